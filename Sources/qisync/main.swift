import Foundation
import QISyncShell

// A full disk or a file-size limit is an error to report, not a signal that kills the process.
signal(SIGXFSZ, SIG_IGN)
let arguments = QisyncCommand.normalise(Array(CommandLine.arguments.dropFirst()))
if let problem = QisyncCommand.unknownCommand(Array(arguments.prefix { !$0.hasPrefix("-") }.prefix(2))) {
    FileHandle.standardError.write(Data("Error: \(problem)\n".utf8))
    exit(64)
}
QisyncCommand.main(arguments)
