// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Kiln",
    products: [
        .library(name: "Kiln", targets: ["Kiln"]),
        .executable(name: "kiln", targets: ["KilnCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // System libraries (Debian: ocl-icd-opencl-dev opencl-headers, libclblast-dev, libopenblas-dev, zlib1g-dev, libhdf5-dev).
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL"),
        .systemLibrary(name: "CCLBlast", path: "Sources/CCLBlast"),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5"),
        // PNG/JPEG decoding (libpng-dev, libjpeg62-turbo-dev), in C for their setjmp error handling.
        .target(name: "CImageIO", path: "Sources/CImageIO", linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg")]),
        // Variable-length HDF5 string attributes read in a child process (damaged files crash libhdf5 there).
        .target(name: "CHDF5Sandbox", path: "Sources/CHDF5Sandbox", linkerSettings: [.linkedLibrary("hdf5_serial")]),
        // MPI (Open MPI or MPICH) loaded at run time for data-parallel training: nothing needed to build.
        .target(name: "CMPI", path: "Sources/CMPI", linkerSettings: [.linkedLibrary("dl")]),
        // The CPU backend's vectorised loops (convolution, FMA peak), one build per x86 vector width.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O2"])]),

        // Turns Kernels/*.cl into Swift string constants so an installed binary needs no source tree.
        .executableTarget(name: "EmbedKernels", path: "Sources/EmbedKernels"),
        .plugin(
            name: "EmbedKernelsPlugin", capability: .buildTool(),
            dependencies: ["EmbedKernels"], path: "Sources/EmbedKernelsPlugin"),

        // Compiles every Swift snippet of README.md and docs/*.md.
        .executableTarget(name: "ExtractSnippets", path: "Sources/ExtractSnippets"),
        .plugin(
            name: "SnippetsPlugin", capability: .buildTool(),
            dependencies: ["ExtractSnippets"], path: "Sources/SnippetsPlugin"),
        .target(name: "DocumentationSnippets", dependencies: ["Kiln"], path: "Examples/DocumentationSnippets",
                plugins: ["SnippetsPlugin"]),
    ] + ["GAN1D", "Autoencoder", "RecurrentCell", "VAE", "DCGAN"].map {
        // Programs of the workshop curriculum written against the Swift API (run briefly by the tests),
        // in Swift 6 mode as a new package that depends on Kiln compiles them.
        .executableTarget(name: $0, dependencies: ["Kiln"], path: "Examples/\($0)", swiftSettings: [.swiftLanguageMode(.v6)])
    } + [

        .target(
            name: "Kiln",
            dependencies: ["COpenCL", "CCLBlast", "CBLAS", "CZlib", "CHDF5", "CHDF5Sandbox", "CImageIO", "CKernels", "CMPI",
                           .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            plugins: ["EmbedKernelsPlugin"]),
        .executableTarget(
            name: "KilnCLI",
            dependencies: ["Kiln", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "KilnTests", dependencies: ["Kiln", "KilnCLI", "CZlib"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v5]
)
