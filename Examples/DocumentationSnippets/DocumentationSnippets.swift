// This target compiles every ```swift snippet of README.md and docs/*.md (extracted by the
// SnippetsPlugin build tool), so a documented example that stops compiling fails the build.
// Nothing here runs; the README's command-line recipes run in Tests/KilnTests/DocumentationTests.
