import ArgumentParser
import Foundation

/// Where a command keeps each value a line gives it, by key path: its text options (by long
/// name), its repeatable options, its positional arguments (in order) and the flags it takes.
///
/// A script's lines are mostly the same command with the same options and different values
/// (`initiative add --title … --team …`, a hundred thousand times). The argument parser rebuilds
/// the command's whole option set by reflection for every line, which was most of a script
/// line's cost; with these slots the shell parses the first line of each *shape* with the
/// argument parser and fills later lines of that shape into a copy of it (see
/// ``CommandTemplates``). Only what the slots name is filled: any other word sends the line to
/// the argument parser whole. (Unchecked sendable: key paths are immutable once made.)
struct CommandSlots<Command>: @unchecked Sendable {
    var text: [String: WritableKeyPath<Command, String?>] = [:]
    var lists: [String: WritableKeyPath<Command, [String]>] = [:]
    var arguments: [WritableKeyPath<Command, String>] = []
    var flags: Set<String> = []

    /// These slots with a group's (an `@OptionGroup` property) added.
    func including<Group>(_ group: WritableKeyPath<Command, Group>, _ slots: CommandSlots<Group>) -> Self {
        var all = self
        for (name, path) in slots.text { all.text[name] = group.appending(path: path) }
        for (name, path) in slots.lists { all.lists[name] = group.appending(path: path) }
        all.arguments += slots.arguments.map { group.appending(path: $0) }
        all.flags.formUnion(slots.flags)
        return all
    }
}

/// A command a script may fill from a template: see ``CommandSlots``.
protocol TemplatedCommand: ParsableCommand {
    static var slots: CommandSlots<Self> { get }
}

/// The shape of a line: which option and flag words it has, in order, and where its values
/// and arguments stand, with the values themselves left out.
struct LineShape {
    /// The line's words after the command's name, by slot: `--name` for an option or flag,
    /// `=` for a value, `_` for a positional argument.
    let key: String
    /// The option each value fills, in order (a repeatable option once per value).
    let options: [String]
    /// The values, in the order of `options`.
    let values: [String]
    /// The positional arguments, in order.
    let arguments: [String]

    /// The shape of `words` (the words after the command's name) for a command with these
    /// slots, or nil when a word is one the slots do not name: a short or `--name=value` option,
    /// `--`, an option given twice, a value or argument that is empty or starts with `-` (the
    /// argument parser reads those by rules of their own), or more arguments than it takes.
    init?<Command>(_ words: ArraySlice<String>, slots: CommandSlots<Command>) {
        var key = "", options: [String] = [], values: [String] = [], arguments: [String] = []
        var seen = Set<String>()
        var index = words.startIndex
        while index < words.endIndex {
            let word = words[index]
            index += 1
            guard word.hasPrefix("--") else {
                guard !word.isEmpty, !word.hasPrefix("-"), arguments.count < slots.arguments.count else { return nil }
                arguments.append(word)
                key += " _"
                continue
            }
            let name = String(word.dropFirst(2))
            if slots.flags.contains(name) {
                guard seen.insert(name).inserted else { return nil }
                key += " " + word
                continue
            }
            let repeatable = slots.lists[name] != nil
            guard repeatable || slots.text[name] != nil, repeatable || seen.insert(name).inserted,
                  index < words.endIndex, !words[index].isEmpty, !words[index].hasPrefix("-") else { return nil }
            options.append(name)
            values.append(words[index])
            index += 1
            key += " " + word + " ="
        }
        (self.key, self.options, self.values, self.arguments) = (key, options, values, arguments)
    }
}

/// The commands a shell has parsed, by shape: the first line of a shape goes through the
/// argument parser, later lines of the same shape are its result with their own values filled
/// in. Lines of a shape the parser refused are never templates, so they keep going through it
/// (and get its messages). One per shell, shared by the threads that parse its script ahead.
final class CommandTemplates: @unchecked Sendable {
    /// Templates by command name and shape; at most ``limit``, so a script of endlessly
    /// varied lines costs no more memory than this.
    private var templates: [String: any ParsableCommand] = [:]
    private let lock = NSLock()
    static let limit = 256

    /// `words` (the words after the command's name `name`) parsed as `command`: filled into a
    /// template of the same shape if there is one, else parsed by the argument parser (and
    /// kept as the template for its shape). Throws what the argument parser throws.
    func parse(_ command: ParsableCommand.Type, named name: String, _ words: [String]) throws -> ParsableCommand {
        guard let templated = command as? any TemplatedCommand.Type else { return try command.parse(words) }
        return try parseTemplated(templated, named: name, words)
    }

    private func parseTemplated<Command: TemplatedCommand>(_ command: Command.Type, named name: String, _ words: [String]) throws -> ParsableCommand {
        guard let shape = LineShape(words[...], slots: Command.slots) else { return try command.parse(words) }
        let key = name + shape.key
        if let template = lock.withLock({ templates[key] }) as? Command {
            return try Self.fill(template, shape)
        }
        let parsed = try command.parse(words)
        lock.withLock { if templates.count < Self.limit { templates[key] = parsed } }
        return parsed
    }

    /// `template` with the values and arguments of `shape` in place of its own.
    static func fill<Command: TemplatedCommand>(_ template: Command, _ shape: LineShape) throws -> Command {
        let slots = Command.slots
        var command = template
        var lists: [String: [String]] = [:]
        for (name, value) in zip(shape.options, shape.values) {
            if let path = slots.text[name] {
                command[keyPath: path] = value
            } else {
                lists[name, default: []].append(value)
            }
        }
        for (name, values) in lists { command[keyPath: slots.lists[name]!] = values }
        for (path, argument) in zip(slots.arguments, shape.arguments) { command[keyPath: path] = argument }
        try command.validate()
        return command
    }

    /// The shapes there are templates of, as `name --option = …`.
    var shapes: Set<String> { lock.withLock { Set(templates.keys) } }
}
