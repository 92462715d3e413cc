import Foundation

/// Words to token ids, as Keras's `TextVectorization` after `adapt`: id 0 pads, id 1 stands for
/// words outside the vocabulary, then the most frequent words of the training texts (ties in
/// alphabetical order). Texts are lower-cased and split on anything that is not a letter or digit.
public struct TextVocabulary: Codable, Sendable, Equatable {
    public var words: [String]
    /// Every text becomes this many ids: cut at the end, or padded there with 0.
    public var sequenceLength: Int

    /// The vocabulary of `texts`: at most `size` ids, padding and out-of-vocabulary included.
    public init(adaptingTo texts: [String], size: Int, sequenceLength: Int) {
        var counts: [Substring: Int] = [:]
        for text in texts { for word in Self.words(text) { counts[word, default: 0] += 1 } }
        let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(max(size - 2, 0))
        (words, self.sequenceLength) = (["", "[UNK]"] + ranked.map { String($0.key) }, sequenceLength)
    }

    static func words(_ text: String) -> [Substring] {
        text.lowercased().split { !($0.isLetter || $0.isNumber) }
    }

    /// The token ids of `texts` (`sequenceLength` per text) with their labels.
    public func dataset(_ texts: [String], labels: [Int32], classNames: [String]) -> Dataset {
        let index = Dictionary(words.enumerated().map { ($1, $0) }) { first, _ in first }
        var ids: [Float] = []
        ids.reserveCapacity(texts.count * sequenceLength)
        for text in texts {
            let encoded = Self.words(text).prefix(sequenceLength).map { Float(index[String($0)] ?? 1) }
            ids += encoded + [Float](repeating: 0, count: sequenceLength - encoded.count)
        }
        return Dataset(features: .floats(ids), sampleShape: [sequenceLength], labels: labels, classNames: classNames)
    }
}

/// Texts in one sub-folder per class of `.txt` files (the aclImdb layout, Keras's
/// `text_dataset_from_directory`), classes in sorted order.
public enum TextFolder {
    public static func documents(_ folder: URL) throws -> (texts: [String], labels: [Int32], classNames: [String]) {
        let manager = FileManager.default
        let classes = ((try? manager.contentsOfDirectory(atPath: folder.path)) ?? []).filter {
            var isDirectory: ObjCBool = false
            return !$0.hasPrefix(".") && manager.fileExists(atPath: folder.appendingPathComponent($0).path, isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
        var texts: [String] = [], labels: [Int32] = []
        for (label, name) in classes.enumerated() {
            let files = try manager.contentsOfDirectory(atPath: folder.appendingPathComponent(name).path).filter { $0.lowercased().hasSuffix(".txt") }.sorted()
            for file in files {
                let url = folder.appendingPathComponent(name).appendingPathComponent(file)
                guard let data = manager.contents(atPath: url.path) else { throw DataError(url.path, "cannot be read") }
                texts.append(String(decoding: data, as: UTF8.self))
                labels.append(Int32(label))
            }
        }
        guard !texts.isEmpty else { throw DataError(folder.path, "expected one sub-folder per class with .txt files in it") }
        return (texts, labels, classes)
    }

    /// Whether `folder`'s class sub-folders (or those of its train/ part) hold text files.
    public static func holdsText(_ folder: URL) -> Bool {
        let manager = FileManager.default
        let root = manager.fileExists(atPath: folder.appendingPathComponent("train").path) ? folder.appendingPathComponent("train") : folder
        for name in (try? manager.contentsOfDirectory(atPath: root.path)) ?? [] where !name.hasPrefix(".") {
            let files = (try? manager.contentsOfDirectory(atPath: root.appendingPathComponent(name).path)) ?? []
            if files.contains(where: { $0.lowercased().hasSuffix(".txt") }) { return true }
        }
        return false
    }
}
