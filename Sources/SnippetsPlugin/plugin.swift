import Foundation
import PackagePlugin

/// Compiles the Swift snippets of README.md and docs/*.md into the target (see ExtractSnippets).
@main
struct SnippetsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let docs = root.appending(path: "docs")
        let pages = [root.appending(path: "README.md")] + (try FileManager.default
            .contentsOfDirectory(at: docs, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "md" }
            .sorted { $0.path < $1.path })
        let output = context.pluginWorkDirectoryURL.appending(path: "Snippets.swift")
        return [
            .buildCommand(
                displayName: "Extracting the Swift snippets of \(pages.count) documentation pages",
                executable: try context.tool(named: "ExtractSnippets").url,
                arguments: [output.path] + pages.map(\.path),
                inputFiles: pages,
                outputFiles: [output])
        ]
    }
}
