import BerthOCI

/// swift-crypto also exports a `Digest` (a protocol); in this module the
/// name means the OCI content digest.
package typealias Digest = BerthOCI.Digest
