// Writes a Swift file holding each OpenCL source as a string constant.
// Usage: EmbedKernels OUTPUT.swift KERNEL.cl...
import Foundation

let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    FileHandle.standardError.write(Data("usage: EmbedKernels OUTPUT.swift KERNEL.cl...\n".utf8))
    exit(2)
}

var swift = "// Generated from Kernels/*.cl by EmbedKernels. Do not edit.\n\n"
swift += "enum KernelSources {\n    /// OpenCL C source of each op family, keyed by file name without `.cl`.\n"
swift += "    static let families: [String: String] = [\n"
for path in arguments.dropFirst().sorted() {
    let url = URL(fileURLWithPath: path)
    let text = try String(contentsOf: url, encoding: .utf8)
    // A raw string delimiter longer than any run of '#' in the source keeps it verbatim.
    var fence = "#"
    while text.contains("\"" + fence) || text.contains(fence + "\"") { fence += "#" }
    let name = url.deletingPathExtension().lastPathComponent
    swift += "        \"\(name)\": \(fence)\"\"\"\n\(text)\n\"\"\"\(fence),\n"
}
swift += "    ]\n}\n"
try swift.write(toFile: output, atomically: true, encoding: .utf8)
