/// An image-store or layer failure: one lowercase line naming what failed
/// and why, printed as `berth: <line>`.
package struct ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    package var message: String

    package init(_ message: String) {
        self.message = message
    }

    package var description: String { message }
}
