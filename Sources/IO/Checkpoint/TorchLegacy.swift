/// The pre-1.6 `torch.save` format (`_legacy_save`, still written with
/// `_use_new_zipfile_serialization=False`): five pickles back to back (magic
/// number, protocol version 1001, sys_info, the object, the sorted list of
/// storage keys), then each storage in that list's order as an int64 element
/// count followed by its raw bytes. See docs/formats.md 2.4.
enum TorchLegacy {
    /// `0x1950a86a20f9469cfc6c` as pickle LONG1 bytes.
    static let magic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let signature: [UInt8] = [0x80, 0x02, 0x8A, 0x0A] + magic + [0x2E]

    static func load(_ file: MappedFile) throws -> [CheckpointTensor] {
        let path = file.path
        let all = file.whole
        var pos = 0
        func next(_ what: String) throws -> PickleReader {
            PickleReader(bytes: all, at: pos, file: path, what: what, legacy: true)
        }
        var r = try next("magic number")
        guard case let .bigInt(m) = try r.load(), m == magic else {
            throw IOFormatError.corrupt(file: path, detail: "not a torch.save file (bad magic number)")
        }
        pos = r.pos
        r = try next("protocol version")
        guard case let .int(version) = try r.load(), version == 1001 else {
            throw IOFormatError.unsupported(file: path, detail: "legacy torch.save protocol version is not 1001")
        }
        pos = r.pos
        r = try next("sys_info")
        guard case let .dict(info) = try r.load() else { throw IOFormatError.corrupt(file: path, detail: "sys_info is not a dict") }
        for (k, v) in info.items {
            if case .string("little_endian") = k, case .bool(false) = v {
                throw IOFormatError.unsupported(file: path, detail: "a big-endian checkpoint (only little-endian ones are supported)")
            }
        }
        pos = r.pos
        let objectReader = try next("object pickle")
        let object = try objectReader.load()
        pos = objectReader.pos
        r = try next("storage key list")
        guard case let .list(keyList) = try r.load() else { throw IOFormatError.corrupt(file: path, detail: "storage key list is not a list") }
        pos = r.pos
        // The storages follow, each as int64 numel + bytes, in key-list order.
        var offsets: [String: Int] = [:]
        for k in keyList.items {
            guard case let .string(key) = k else { throw IOFormatError.corrupt(file: path, detail: "storage key is not a string") }
            guard let ref = objectReader.storages[key] else {
                throw IOFormatError.corrupt(file: path, detail: "storage '\(key)' is listed but never used, so its element size is unknown")
            }
            let header = try file.bytes(at: pos, count: 8, what: "size of storage '\(key)'")
            let numel = header.u64(0)
            guard numel == UInt64(ref.numel) else {
                throw IOFormatError.corrupt(file: path, detail: "storage '\(key)' holds \(numel) elements, the pickle says \(ref.numel)")
            }
            let count = ref.numel * ref.dtype.byteWidth // numel <= 2^40 (checked by the reader)
            _ = try file.bytes(at: pos + 8, count: count, what: "storage '\(key)'")
            guard offsets[key] == nil else { throw IOFormatError.corrupt(file: path, detail: "storage '\(key)' is listed twice") }
            offsets[key] = pos + 8
            pos += 8 + count
        }
        return try TorchObjects.tensors(in: object, file: path) { storage in
            guard let offset = offsets[storage.key] else {
                throw IOFormatError.corrupt(file: path, detail: "storage '\(storage.key)' is not in the storage key list")
            }
            // The legacy format has no checksums.
            return TorchObjects.Located(file: file, offset: offset, check: nil)
        }
    }
}
