import CZlib
import Foundation
import Testing
@testable import Kiln

/// A fresh temporary folder for one test.
func temporaryFolder(_ name: String = #function) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-test-\(name.filter(\.isLetter))-\(UUID())")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Bytes compressed with zlib: gzip framing, zlib framing (PNG) or raw deflate (zip).
func compress(_ bytes: [UInt8], windowBits: Int32) -> [UInt8] {
    var stream = z_stream()
    deflateInit2_(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 32)
    var input = bytes
    input.withUnsafeMutableBufferPointer { inp in
        output.withUnsafeMutableBufferPointer { out in
            stream.next_in = inp.baseAddress; stream.avail_in = uInt(inp.count)
            stream.next_out = out.baseAddress; stream.avail_out = uInt(out.count)
            deflate(&stream, Z_FINISH)
        }
    }
    let produced = Int(stream.total_out)
    deflateEnd(&stream)
    return Array(output.prefix(produced))
}

/// An IDX file of unsigned bytes with the given dimensions.
func idx(_ values: [UInt8], shape: [Int]) -> [UInt8] {
    [0, 0, 8, UInt8(shape.count)] + shape.flatMap { d in (0..<4).reversed().map { UInt8(truncatingIfNeeded: d >> (8 * $0)) } } + values
}

/// A stored (uncompressed) or deflated zip archive.
func zip(_ entries: [(String, [UInt8])], deflated: Bool) -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
    func u32(_ v: Int) -> [UInt8] { u16(v & 0xffff) + u16(v >> 16 & 0xffff) }
    var body: [UInt8] = [], central: [UInt8] = []
    for (name, data) in entries {
        let stored = deflated ? compress(data, windowBits: -15) : data
        let crc = Int(crc32(0, data, uInt(data.count)))
        let common = u16(20) + u16(0) + u16(deflated ? 8 : 0) + u16(0) + u16(0) + u32(crc) + u32(stored.count) + u32(data.count) + u16(name.utf8.count) + u16(0)
        central += u32(0x0201_4b50) + u16(20) + common + u16(0) + u16(0) + u16(0) + u32(0) + u32(body.count) + Array(name.utf8)
        body += u32(0x0403_4b50) + common + Array(name.utf8) + stored
    }
    return body + central + u32(0x0605_4b50) + u16(0) + u16(0) + u16(entries.count) + u16(entries.count) + u32(central.count) + u32(body.count) + u16(0)
}

/// A gray or RGB 8-bit PNG.
/// An image folder for the command line: `count` PNGs of `side`×`side`×`channels` per class in
/// `folder/<class>/`, each pixel drawn by `pixel(classIndex)`.
func writeImageFolder(_ folder: URL, classes: [String], count: Int, side: Int, channels: Int = 1, pixel: (Int) -> UInt8) throws {
    for (label, name) in classes.enumerated() {
        let directory = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for i in 0..<count {
            let pixels = (0..<side * side * channels).map { _ in pixel(label) }
            try Data(png(width: side, height: side, channels: channels, pixels: pixels)).write(to: directory.appendingPathComponent("\(i).png"))
        }
    }
}

func png(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> [UInt8] {
    func u32(_ v: Int) -> [UInt8] { (0..<4).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        return u32(data.count) + typed + u32(Int(crc32(0, typed, uInt(typed.count))))
    }
    var rows: [UInt8] = []
    let stride = width * channels
    for row in 0..<height { rows += [0] + pixels[(row * stride)..<((row + 1) * stride)] }
    let colorType: UInt8 = channels == 3 ? 2 : 0
    let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    let header = chunk("IHDR", u32(width) + u32(height) + [8, colorType, 0, 0, 0])
    return signature + header + chunk("IDAT", compress(rows, windowBits: 15)) + chunk("IEND", [])
}

/// A 6×4 RGB JPEG (made by Pillow, quality 95): pixel (x, y) ≈ (40x, 60y, 200).
let jpegFixture = Data(base64Encoded: """
/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJBwYGCAsICQoKCgoKBggLDAsKDAkKCgr/2wBDAQICAgICAgUDAwUKBwYHCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgr/wAARCAAEAAYDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDrf2VP+Cf/AOzH/wAIyf8Aih/+WI/iX1H+zRRRX7jxBnedf2vV/wBpqb/zy/zPofB/iPiH/iHOX/7ZV+Bf8vJ/5n//2Q==
""", options: .ignoreUnknownCharacters)!

@Suite("Dataset loaders") struct DataTests {
    @Test func idxPlainAndGzipped() throws {
        let folder = try temporaryFolder()
        var random = Random("idx")
        let pixels = (0..<3 * 5 * 4).map { _ in UInt8(random.int(256)) }
        try Data(compress(idx(pixels, shape: [3, 5, 4]), windowBits: 31)).write(to: folder.appendingPathComponent("images.gz"))
        try Data(idx([7, 0, 9], shape: [3])).write(to: folder.appendingPathComponent("labels"))
        let data = try IDX.dataset(images: folder.appendingPathComponent("images.gz"), labels: folder.appendingPathComponent("labels"))
        #expect(data.sampleShape == [5, 4, 1] && data.count == 3 && data.labels == [7, 0, 9])
        guard case .bytes(let bytes) = data.features else { Issue.record("IDX images should stay bytes"); return }
        #expect(bytes == pixels)
    }

    @Test func idxErrorsNameTheFileAndTheProblem() throws {
        let folder = try temporaryFolder()
        func check(_ bytes: [UInt8], _ expected: String) throws {
            let url = folder.appendingPathComponent("bad-\(UUID()).idx")
            try Data(bytes).write(to: url)
            #expect { try IDX.read(url) } throws: { "\($0)".contains(url.path) && "\($0)".contains(expected) }
        }
        try check([1, 2, 3, 4, 5], "not an IDX file")
        try check(Array(idx([1, 2, 3], shape: [4]).dropLast(0)), "promises 4")
        try check([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0], "not unsigned bytes")
        try check(Array(compress(idx([1, 2, 3, 4], shape: [4]), windowBits: 31).dropLast(6)), "truncated")
        let missing = folder.appendingPathComponent("absent")
        #expect { try NamedDataset.mnist.load(.train, from: missing) } throws: { "\($0)".contains("train-images-idx3-ubyte.gz") && "\($0)".contains("yann.lecun.com") }
    }

    @Test func cifar10Batches() throws {
        let folder = try temporaryFolder()
        var record = [UInt8](repeating: 0, count: 3073)
        record[0] = 6
        for p in 0..<1024 { (record[1 + p], record[1025 + p], record[2049 + p]) = (1, 2, 3) }
        try Data(record + record).write(to: folder.appendingPathComponent("test_batch.bin"))
        let data = try NamedDataset.cifar10.load(.test, from: folder)
        #expect(data.count == 2 && data.labels == [6, 6] && data.sampleShape == [32, 32, 3])
        guard case .bytes(let bytes) = data.features else { return }
        #expect(Array(bytes.prefix(6)) == [1, 2, 3, 1, 2, 3])
        try Data(record.dropLast()).write(to: folder.appendingPathComponent("test_batch.bin"))
        #expect { try NamedDataset.cifar10.load(.test, from: folder) } throws: { "\($0)".contains("3073-byte") }
    }

    @Test func csvWithNumericAndNamedLabels() throws {
        let folder = try temporaryFolder()
        let url = folder.appendingPathComponent("iris.csv")
        try "a,b,species\n1.5,2,setosa\n3,4.25,virginica\n5,6,setosa\n".write(to: url, atomically: true, encoding: .utf8)
        let data = try CSVData.dataset(url, labelColumn: "species")
        #expect(data.sampleShape == [2] && data.labels == [0, 1, 0] && data.classNames == ["setosa", "virginica"])
        guard case .floats(let values) = data.features else { return }
        #expect(values == [1.5, 2, 3, 4.25, 5, 6])
        try "a,label\n1,0\nx,1\n".write(to: url, atomically: true, encoding: .utf8)
        #expect { try CSVData.dataset(url) } throws: { "\($0)".contains("line 3") && "\($0)".contains("'x' is not a number") }
        #expect { try CSVData.dataset(url, labelColumn: "nope") } throws: { "\($0)".contains("no column named 'nope'") }
    }

    @Test func numpyArraysAndArchives() throws {
        let folder = try temporaryFolder()
        let url = folder.appendingPathComponent("x.npy")
        try NumPy.write([1, 2.5, -3, 4, 5, 6], shape: [2, 3], to: url)
        let array = try NumPy.read(url)
        #expect(array.shape == [2, 3] && array.values == [1, 2.5, -3, 4, 5, 6] && array.dtype == "<f4")
        let bytes = [UInt8](try Data(contentsOf: url))
        var header = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2), }"
        header += String(repeating: " ", count: (64 - (11 + header.count) % 64) % 64) + "\n"
        let u8 = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + Array(header.utf8) + [0, 255, 10, 20, 30, 40, 50, 60]
        var yHeader = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }"
        yHeader += String(repeating: " ", count: (64 - (11 + yHeader.count) % 64) % 64) + "\n"
        let y = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(yHeader.count), 0] + Array(yHeader.utf8) + [3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        for deflated in [false, true] {
            let archive = folder.appendingPathComponent("data-\(deflated).npz")
            try Data(zip([("x_train.npy", u8), ("y_train.npy", y)], deflated: deflated)).write(to: archive)
            let arrays = try NumPy.readArchive(archive)
            let data = try NumPy.dataset(x: arrays["x_train"]!, y: arrays["y_train"]!, file: archive.path)
            #expect(data.sampleShape == [2, 2, 1] && data.labels == [3, 1])
            guard case .bytes(let pixels) = data.features else { Issue.record("uint8 arrays stay bytes"); continue }
            #expect(pixels == [0, 255, 10, 20, 30, 40, 50, 60])
        }
        try Data(bytes.dropLast(4)).write(to: url)
        #expect { try NumPy.read(url) } throws: { "\($0)".contains("truncated") }
        try Data([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).write(to: url)
        #expect { try NumPy.read(url) } throws: { "\($0)".contains("not a .npy file") }
        try Data([1, 2, 3]).write(to: url)
        #expect { try NumPy.readArchive(url) } throws: { "\($0)".contains("not a zip archive") }
    }

    @Test func imageFolderDecodesAndResizes() throws {
        let folder = try temporaryFolder()
        for name in ["cats", "dogs"] { try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true) }
        // A 4×4 RGB PNG: left half red, right half blue.
        let pixels: [UInt8] = (0..<16).flatMap { i -> [UInt8] in i % 4 < 2 ? [255, 0, 0] : [0, 0, 255] }
        try Data(png(width: 4, height: 4, channels: 3, pixels: pixels)).write(to: folder.appendingPathComponent("cats/a.png"))
        try Data(png(width: 2, height: 2, channels: 1, pixels: [0, 100, 200, 255])).write(to: folder.appendingPathComponent("cats/b.png"))
        try jpegFixture.write(to: folder.appendingPathComponent("dogs/c.jpg"))
        try Data("not an image".utf8).write(to: folder.appendingPathComponent("dogs/notes.txt"))
        let data = try ImageFolder.dataset(folder, size: (2, 2), channels: 3)
        #expect(data.count == 3 && data.labels == [0, 0, 1] && data.classNames == ["cats", "dogs"] && data.sampleShape == [2, 2, 3])
        guard case .bytes(let bytes) = data.features else { return }
        #expect(Array(bytes.prefix(12)) == [255, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255])
        #expect(Array(bytes[12..<24]) == [0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255])
        let jpeg = try ImageFolder.decode(folder.appendingPathComponent("dogs/c.jpg"))
        #expect(jpeg.width == 6 && jpeg.height == 4 && jpeg.channels == 3)
        // Red grows to the right (JPEG's chroma subsampling blurs colour, so loosely).
        #expect(jpeg.pixels[(3 * 6 + 5) * 3] > 150 && jpeg.pixels[(3 * 6) * 3] < 60)
        try Data([0xFF, 0xD8, 0xFF, 0x00]).write(to: folder.appendingPathComponent("dogs/broken.jpg"))
        #expect { try ImageFolder.dataset(folder, size: (2, 2)) } throws: { "\($0)".contains("broken.jpg") && "\($0)".contains("cannot decode") }
    }

    /// A folder read class by class, shuffled once before its validation split: every class on both sides.
    @Test func shuffledFolderDataSplitsOverEveryClass() throws {
        let labels = (0..<40).map { Int32($0 / 20) }
        let data = Dataset(features: .floats(labels.indices.map(Float.init)), sampleShape: [1], labels: labels)
        #expect(try Set(data.split(validationFraction: 0.2).validation.labels!) == [1], "unshuffled: the last class only")
        let shuffled = data.shuffled(seed: 1)
        #expect(shuffled.labels == data.shuffled(seed: 1).labels && shuffled.labels != data.shuffled(seed: 2).labels)
        guard case .floats(let values) = shuffled.features else { Issue.record("float features"); return }
        #expect(values.map { labels[Int($0)] } == shuffled.labels!, "features and labels move together")
        #expect(Set(values) == Set(labels.indices.map(Float.init)))
        #expect(try Set(shuffled.split(validationFraction: 0.2).validation.labels!) == [0, 1])
    }

    @Test func batchesShuffleDeterministicallyAndPrefetch() throws {
        let data = Dataset(features: .bytes((0..<10).map { UInt8($0 * 20) }), sampleShape: [1], labels: (0..<10).map { Int32($0) })
        let loader = try BatchLoader(data, batchSize: 4, shuffle: true, seed: 3)
        #expect(loader.order(epoch: 1) == loader.order(epoch: 1))
        #expect(loader.order(epoch: 1) != loader.order(epoch: 2))
        #expect(loader.order(epoch: 1).sorted() == Array(0..<10))
        let batches = try loader.batches(epoch: 1, on: CPUDevice.shared).map { try $0.get() }
        #expect(batches.map(\.count) == [4, 4, 2])
        let labels = try batches.flatMap { try $0.targets[0].toLabels() }
        #expect(labels == loader.order(epoch: 1).map { Int32($0) })
        let inputs = try batches.flatMap { try $0.inputs[0].toArray() }
        #expect(inputs == labels.map { Float($0 * 20) * (1 / 255) })
        let oneHot = try BatchLoader(data, batchSize: 10, oneHotClasses: 10).batches(epoch: 0, on: CPUDevice.shared).map { try $0.get() }[0]
        #expect(try oneHot.targets[0].shape == [10, 10] && oneHot.targets[0].toArray()[0..<11] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func augmentationIsSeededAndFlipsExactly() throws {
        var random = Random("augment")
        let data = Dataset(features: .bytes((0..<4 * 6 * 5).map { _ in UInt8(random.int(256)) }), sampleShape: [6, 5, 1], labels: [0, 1, 2, 3])
        let full = try Augmentation(spec: "flip,shift=0.1,rotate=0.05,zoom=0.1,crop=1")
        let loader = try BatchLoader(data, batchSize: 4, seed: 9, augmentation: full)
        #expect(loader.hostBatch(0, order: [0, 1, 2, 3], epoch: 1).inputs == loader.hostBatch(0, order: [0, 1, 2, 3], epoch: 1).inputs)
        #expect(loader.hostBatch(0, order: [0, 1, 2, 3], epoch: 1).inputs != loader.hostBatch(0, order: [0, 1, 2, 3], epoch: 2).inputs)
        // Flipping alone gives each image either unchanged or mirrored, both over a few epochs.
        let flips = try BatchLoader(data, batchSize: 4, augmentation: Augmentation(horizontalFlip: true))
        let plain = try BatchLoader(data, batchSize: 4).hostBatch(0, order: [0, 1, 2, 3], epoch: 0).inputs
        var seen = Set<Bool>()
        for epoch in 0..<8 {
            let out = flips.hostBatch(0, order: [0, 1, 2, 3], epoch: epoch).inputs
            for image in 0..<4 {
                let original = Array(plain[image * 30 ..< (image + 1) * 30]), result = Array(out[image * 30 ..< (image + 1) * 30])
                let mirrored = (0..<6).flatMap { row in original[row * 5 ..< (row + 1) * 5].reversed() }
                #expect(result == original || result == mirrored)
                seen.insert(result == mirrored)
            }
        }
        #expect(seen == [true, false])
        #expect { try Augmentation(spec: "flip,spin=3") } throws: { "\($0)".contains("spin=3") }
    }
}
