/// A file or folder that cannot be read as the dataset or model it should be. The message names
/// the file, what was expected and what was found.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let problem: String

    public init(_ file: String, _ problem: String) { (self.file, self.problem) = (file, problem) }

    public var description: String { "\(file): \(problem)" }
}
