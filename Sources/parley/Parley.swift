import ArgumentParser

@main
struct Parley: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley",
        abstract: "A real-time chat server that speaks Socket.IO.",
        subcommands: [Serve.self, Chat.self, Events.self, Bench.self],
        defaultSubcommand: Serve.self
    )
}
