import Foundation
import QISyncShell

// A full disk or a file-size limit is an error to report, not a signal that kills the process.
signal(SIGXFSZ, SIG_IGN)
QisyncCommand.main()
