import ArgumentParser
import QISyncDomain

/// The typed fields of an initiative.
struct InitiativeFields: ParsableArguments {
    @Option(help: "A short name for the initiative.") var title: String?
    @Option(help: "The team or ward running it.") var team: String?
    @Option(help: "The problem statement.") var problem: String?
    @Option(help: "The aim: what, how much, by when.") var aim: String?
    @Option(help: "model-for-improvement, lean, qsir or other.") var method: String?
    @Option(help: "proposed, active, sustaining, closed or abandoned.") var status: String?
    @Option(help: "IHI progress score, 0.5 to 5.0 in steps of 0.5.") var score: String?
    @Option(help: "The lead's role (a role, not a name).") var lead: String?
    @Option(help: "The sponsor's role.") var sponsor: String?

    var values: [String: String] {
        ["title": title, "team": team, "problem": problem, "aim": aim, "method": method, "status": status,
         "score": score, "lead": lead, "sponsor": sponsor].compactMapValues { $0 }
    }

    static let slots = CommandSlots<Self>(text: [
        "title": \.title, "team": \.team, "problem": \.problem, "aim": \.aim, "method": \.method, "status": \.status,
        "score": \.score, "lead": \.lead, "sponsor": \.sponsor])
}

/// The typed fields of a PDSA cycle.
struct PDSAFields: ParsableArguments {
    @Option(name: .customLong("change-idea"), help: "The change being tested.") var changeIdea: String?
    @Option(help: "What this cycle is for.") var objective: String?
    @Option(help: "What you expect to happen.") var prediction: String?
    @Option(help: "Who, what, where, when.") var plan: String?
    @Option(name: .customLong("as-planned"), help: "Did it go as planned? yes or no.") var asPlanned: String?
    @Option(help: "What happened.") var observations: String?
    @Option(help: "Study: results against the prediction.") var results: String?
    @Option(help: "Study: what was learnt.") var learning: String?

    var values: [String: String] {
        ["change-idea": changeIdea, "objective": objective, "prediction": prediction, "plan": plan, "as-planned": asPlanned,
         "observations": observations, "results": results, "learning": learning].compactMapValues { $0 }
    }

    static let slots = CommandSlots<Self>(text: [
        "change-idea": \.changeIdea, "objective": \.objective, "prediction": \.prediction, "plan": \.plan,
        "as-planned": \.asPlanned, "observations": \.observations, "results": \.results, "learning": \.learning])
}

/// The FRAME fields and outcome of an adaptation.
struct FrameFields: ParsableArguments {
    @Option(help: "Core functions kept.") var kept: String?
    @Option(help: "Forms changed.") var changed: String?
    @Option(help: "When: pre-implementation, implementation, scale-up or sustainment.") var when: String?
    @Option(help: "planned or reactive.") var planned: String?
    @Option(help: "Who decided (roles).") var who: String?
    @Option(help: "What was modified: content, context, training or implementation.") var what: String?
    @Option(help: "Nature: add, remove, tailor, reorder, substitute, integrate, repeat, lengthen, shorten, loosen or condense.") var nature: String?
    @Option(help: "Fidelity to core functions: consistent, inconsistent or unknown.") var fidelity: String?
    @Option(help: "The goal of the modification.") var goal: String?
    @Option(help: "Contextual reason (repeatable): staffing, patient-population, estate, it, culture, resources.") var reason: [String] = []
    @Option(help: "The outcome.") var outcome: String?

    var values: [String: String] {
        ["kept": kept, "changed": changed, "when": when, "planned": planned, "who": who, "what": what,
         "nature": nature, "fidelity": fidelity, "goal": goal, "outcome": outcome].compactMapValues { $0 }
    }
}

/// A record id or unique prefix, as a positional argument.
struct RecordArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The record's id, or any unique start of it.", valueName: "ID")) var id: String

    static let slots = CommandSlots<Self>(arguments: [\.id])
}

extension CommandContext {
    /// Prints a record, as JSON or in full.
    func show(_ view: RecordView, json: Bool) {
        if json {
            out.json(RecordRendering.json(view))
        } else {
            RecordRendering.show(view, contentHash: view.kind == .initiative ? records.contentHash(of: view) : nil, times: times, to: out)
        }
    }

    /// Finds a record of a kind by id prefix and prints it.
    func showRecord(_ reference: String, as kind: RecordKind, json: Bool) throws {
        let (_, id) = try records.locate(reference, as: kind)
        show(try records.record(kind, id), json: json)
    }

    /// Deletes or restores a record of a kind and prints it.
    func setExists(_ reference: String, as kind: RecordKind, exists: Bool, json: Bool) throws {
        show(try records.setExists(reference, as: kind, exists: exists), json: json)
    }

    /// Prints a list of records, as JSON or a table; when it filled its page (`limit`), says
    /// so on standard error, with how to see more.
    func list(_ views: [RecordView], kind: RecordKind, json: Bool, limit: Int? = nil) {
        if json {
            out.json(views.map(RecordRendering.json))
        } else {
            out.table(RecordRendering.listColumns(kind), views.map(RecordRendering.listRow))
        }
        if let limit, views.count >= limit {
            notices.line("(the first \(limit) shown; there may be more: --limit N shows up to N)")
        }
    }

    /// How many records a list shows unless `--limit` says otherwise: a page that reads at a
    /// terminal and comes back at once from a replica of any size.
    static let pageSize = 100
}
