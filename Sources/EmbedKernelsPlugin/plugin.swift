import Foundation
import PackagePlugin

/// Embeds the package's `Kernels/*.cl` into the target as `KernelSources.families`.
@main
struct EmbedKernelsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let kernels = context.package.directoryURL.appending(path: "Kernels")
        let sources = try FileManager.default
            .contentsOfDirectory(at: kernels, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "cl" }
            .sorted { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appending(path: "KernelSources.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(sources.count) OpenCL kernel files",
                executable: try context.tool(named: "EmbedKernels").url,
                arguments: [output.path] + sources.map(\.path),
                inputFiles: sources,
                outputFiles: [output])
        ]
    }
}
