from domino_orchestrate.cli import main

raise SystemExit(main())
