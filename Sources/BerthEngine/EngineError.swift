package struct EngineError: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable { case invalidArgument, notFound, exists, invalidState, failed }
    package let kind: Kind
    package let message: String
    package init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    package var description: String { message }
}
