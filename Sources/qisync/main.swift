import QISyncShell

QisyncCommand.main()
