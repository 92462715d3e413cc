/// A layer type of the user's that models can be saved and loaded with (Keras's `get_config` plus
/// `custom_objects`): it writes its settings, rebuilds itself from them, and is registered once with
/// `register(_:)` before a model holding it is loaded.
public protocol ConfigurableLayer: Layer {
    /// The constructor's arguments, as JSON values (Keras's `get_config()`).
    var config: [String: Any] { get }
    /// The layer again, from `config` and its name.
    init(config: [String: Any], name: String?) throws
}

/// Layer types that checkpoints and Keras files may name, beside Kiln's own, by class name.
public enum CustomLayers {
    private static let lock = Lock()
    nonisolated(unsafe) private static var types: [String: any ConfigurableLayer.Type] = [:]

    /// Makes `type` loadable under its Swift name (which `typeName` and saved files use).
    public static func register(_ type: any ConfigurableLayer.Type) {
        lock.withLock { types[String(describing: type)] = type }
    }

    static func type(named name: String) -> (any ConfigurableLayer.Type)? { lock.withLock { types[name] } }
}
