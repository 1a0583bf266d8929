/// The zip container of `torch.save` (torch >= 1.6): stored (uncompressed)
/// entries `PREFIX/data.pkl`, `PREFIX/data/<key>`, `PREFIX/byteorder`, ...
/// written by miniz in `caffe2/serialize/inline_container.cc`, always with
/// ZIP64 end records. Sizes come from the central directory (local headers
/// carry zeros), data offsets from the local headers (their extra field holds
/// the 64-byte alignment padding). See docs/formats.md 2.2.
struct ZipArchive {
    struct Entry {
        let name: String
        let method: Int
        let crc32: UInt32
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    let file: MappedFile
    /// Entries in central-directory order.
    let entries: [Entry]
    let byName: [String: Int]

    init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        let n = file.count
        guard n >= 22 else { throw IOFormatError.truncated(file: path, detail: "too short for a zip archive (\(n) bytes)") }
        let all = file.whole
        // End of central directory: scan back over a possible comment.
        var eocd = -1
        var p = n - 22
        let lowest = max(0, n - 22 - 65_535)
        while p >= lowest {
            if all.u32(p) == 0x0605_4B50 { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw IOFormatError.corrupt(file: path, detail: "no zip end-of-central-directory record (truncated?)") }
        var total = Int(all.u16(eocd + 10))
        var cdSize = Int(all.u32(eocd + 12))
        var cdOffset = Int(all.u32(eocd + 16))
        if total == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // ZIP64: the locator sits right before the classic record.
            guard eocd >= 20, all.u32(eocd - 20) == 0x0706_4B50 else {
                throw IOFormatError.corrupt(file: path, detail: "zip64 end-of-central-directory locator missing")
            }
            let z64 = all.u64(eocd - 20 + 8)
            guard n >= 56, z64 <= UInt64(n - 56), all.u32(Int(z64)) == 0x0606_4B50 else {
                throw IOFormatError.corrupt(file: path, detail: "zip64 end-of-central-directory record missing at offset \(z64)")
            }
            let r = Int(z64)
            let t = all.u64(r + 32), s = all.u64(r + 40), o = all.u64(r + 48)
            guard t <= UInt64(n), s <= UInt64(n), o <= UInt64(n) else {
                throw IOFormatError.corrupt(file: path, detail: "zip64 directory sizes are past the end of the file")
            }
            total = Int(t); cdSize = Int(s); cdOffset = Int(o)
        }
        guard cdOffset <= n, cdSize <= n - cdOffset else {
            throw IOFormatError.truncated(file: path, detail: "zip central directory (offset \(cdOffset), \(cdSize) bytes) runs past the end of the file")
        }
        guard total <= cdSize / 46 else {
            throw IOFormatError.corrupt(file: path, detail: "zip directory claims \(total) entries in \(cdSize) bytes")
        }
        let cd = try file.bytes(at: cdOffset, count: cdSize, what: "zip central directory")
        var entries: [Entry] = []
        var byName: [String: Int] = [:]
        var q = 0
        for _ in 0..<total {
            guard cdSize - q >= 46, cd.u32(q) == 0x0201_4B50 else {
                throw IOFormatError.corrupt(file: path, detail: "bad zip central directory entry at offset \(cdOffset + q)")
            }
            let method = Int(cd.u16(q + 10))
            let crc = cd.u32(q + 16)
            var csize = UInt64(cd.u32(q + 20))
            var usize = UInt64(cd.u32(q + 24))
            let nameLen = Int(cd.u16(q + 28)), extraLen = Int(cd.u16(q + 30)), commentLen = Int(cd.u16(q + 32))
            var local = UInt64(cd.u32(q + 42))
            guard cdSize - q - 46 >= nameLen + extraLen + commentLen else {
                throw IOFormatError.corrupt(file: path, detail: "zip central directory entry at offset \(cdOffset + q) runs past the directory")
            }
            let name = String(decoding: cd[(q + 46)..<(q + 46 + nameLen)], as: UTF8.self)
            // ZIP64 extra field (0x0001): 8-byte values for exactly the fields that were 0xFFFFFFFF.
            var x = q + 46 + nameLen
            let xEnd = x + extraLen
            while xEnd - x >= 4 {
                let id = cd.u16(x), len = Int(cd.u16(x + 2))
                guard xEnd - x - 4 >= len else { break }
                if id == 0x0001 {
                    var f = x + 4
                    func next() throws -> UInt64 {
                        guard x + 4 + len - f >= 8 else {
                            throw IOFormatError.corrupt(file: path, detail: "zip64 extra field of '\(name)' is too short")
                        }
                        defer { f += 8 }
                        return cd.u64(f)
                    }
                    if usize == 0xFFFF_FFFF { usize = try next() }
                    if csize == 0xFFFF_FFFF { csize = try next() }
                    if local == 0xFFFF_FFFF { local = try next() }
                }
                x += 4 + len
            }
            guard csize <= UInt64(n), usize <= UInt64(n), local <= UInt64(n) else {
                throw IOFormatError.corrupt(file: path, detail: "zip entry '\(name)' has sizes or offset past the end of the file")
            }
            byName[name] = entries.count
            entries.append(Entry(name: name, method: method, crc32: crc, compressedSize: Int(csize), size: Int(usize), localHeaderOffset: Int(local)))
            q += 46 + nameLen + extraLen + commentLen
        }
        self.entries = entries
        self.byName = byName
    }

    /// Where the entry's bytes start, from its local header; checked to lie in the file.
    func dataRange(_ e: Entry) throws -> (offset: Int, count: Int) {
        let path = file.path
        guard e.method == 0 else {
            throw IOFormatError.unsupported(file: path, detail: "zip entry '\(e.name)' is compressed (method \(e.method)); torch.save stores entries uncompressed")
        }
        guard e.compressedSize == e.size else {
            throw IOFormatError.corrupt(file: path, detail: "zip entry '\(e.name)' is stored but its sizes differ")
        }
        let h = try file.bytes(at: e.localHeaderOffset, count: 30, what: "local header of '\(e.name)'")
        guard h.u32(0) == 0x0403_4B50 else {
            throw IOFormatError.corrupt(file: path, detail: "zip entry '\(e.name)' has no local header at offset \(e.localHeaderOffset)")
        }
        let start = e.localHeaderOffset + 30 + Int(h.u16(26)) + Int(h.u16(28))
        _ = try file.bytes(at: start, count: e.size, what: "zip entry '\(e.name)'")
        return (start, e.size)
    }
}

/// A `torch.save` zip file: the pickled object plus one record per storage.
enum TorchZip {
    static func load(_ file: MappedFile) throws -> [CheckpointTensor] {
        let path = file.path
        let zip = try ZipArchive(file: file)
        guard let first = zip.entries.first else { throw IOFormatError.corrupt(file: path, detail: "empty zip archive") }
        // PyTorchStreamReader takes the folder of the first entry as the archive name.
        guard let slash = first.name.firstIndex(of: "/") else {
            throw IOFormatError.corrupt(file: path, detail: "zip entry '\(first.name)' is not inside a folder, so this is not a torch.save file")
        }
        let root = String(first.name[..<slash])
        if zip.byName[root + "/constants.pkl"] != nil || zip.entries.contains(where: { $0.name.hasPrefix(root + "/code/") }) {
            throw IOFormatError.unsupported(file: path, detail: "a TorchScript archive (torch.jit.save); save the state_dict with torch.save instead")
        }
        func entry(_ name: String) -> ZipArchive.Entry? { zip.byName[root + "/" + name].map { zip.entries[$0] } }
        guard let pkl = entry("data.pkl") else {
            throw IOFormatError.corrupt(file: path, detail: "no '\(root)/data.pkl' in the zip archive")
        }
        if let bo = entry("byteorder") {
            let r = try zip.dataRange(bo)
            let s = String(decoding: try file.bytes(at: r.offset, count: min(r.count, 16), what: "byteorder"), as: UTF8.self)
            guard s == "little" else {
                throw IOFormatError.unsupported(file: path, detail: "byte order '\(s)' (only little-endian checkpoints are supported)")
            }
        }
        let pr = try zip.dataRange(pkl)
        let pklBytes = try file.bytes(at: pr.offset, count: pr.count, what: "data.pkl")
        guard CRC32.checksum(pklBytes) == pkl.crc32 else {
            throw IOFormatError.corrupt(file: path, detail: "data.pkl: checksum does not match")
        }
        let reader = PickleReader(bytes: pklBytes, at: 0, file: path, what: "data.pkl")
        let object = try reader.load()
        var checks: [String: IntegrityCheck] = [:]
        return try TorchObjects.tensors(in: object, file: path) { storage in
            guard let e = entry("data/" + storage.key) else {
                throw IOFormatError.corrupt(file: path, detail: "storage '\(storage.key)' has no record 'data/\(storage.key)' in the archive")
            }
            let r = try zip.dataRange(e)
            let (bytes, overflow) = storage.numel.multipliedReportingOverflow(by: storage.dtype.byteWidth)
            guard !overflow, bytes <= r.count else {
                throw IOFormatError.corrupt(file: path, detail: "storage '\(storage.key)' of \(storage.numel) \(storage.typeName) elements is larger than its record (\(r.count) bytes)")
            }
            let check = checks[e.name] ?? IntegrityCheck(file: file, offset: r.offset, count: r.count, kind: .crc32(e.crc32), what: "zip entry '\(e.name)'")
            checks[e.name] = check
            return TorchObjects.Located(file: file, offset: r.offset, check: check)
        }
    }
}

/// Turning a loaded torch object into named tensors.
enum TorchObjects {
    /// Where a storage's element 0 lies, and the check over its record.
    struct Located {
        let file: MappedFile
        let offset: Int
        let check: IntegrityCheck?
    }

    /// Walks dicts (the state dict, or `{'model': sd, 'epoch': 3}` style
    /// wrappers) and collects the tensors under dotted paths, in order.
    static func tensors(in object: PickleReader.Value, file: String,
                        locate: (PickleReader.StorageRef) throws -> Located) throws -> [CheckpointTensor] {
        var out: [CheckpointTensor] = []
        var storages: [String: Located] = [:]
        func walk(_ v: PickleReader.Value, _ path: String) throws {
            switch v {
            case let .dict(d):
                for (k, value) in d.items {
                    let key: String
                    switch k {
                    case let .string(s): key = s
                    case let .int(i): key = String(i)
                    default: continue
                    }
                    try walk(value, path.isEmpty ? key : path + "." + key)
                }
            case let .tensor(t):
                let s = t.storage
                let located: Located
                if let l = storages[s.key] { located = l } else { located = try locate(s); storages[s.key] = located }
                out.append(try tensor(path, t, located, file: file))
            default:
                break // numbers, strings, lists (optimizer state) are not weights
            }
        }
        try walk(object, "")
        return out
    }

    /// Checks that every element the view (offset, size, stride) reaches lies in the storage.
    static func tensor(_ name: String, _ t: PickleReader.TensorRef, _ at: Located, file: String) throws -> CheckpointTensor {
        let s = t.storage
        guard let n = elementCount(t.shape) else {
            throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' has an absurd size \(t.shape)")
        }
        guard t.offset >= 0, t.offset <= s.numel, t.strides.allSatisfy({ $0 >= 0 && $0 <= 1 << 40 }) else {
            throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' has a negative offset or stride")
        }
        if n > 0 {
            var last = t.offset
            var overflow = false
            for (size, stride) in zip(t.shape, t.strides) {
                let (step, o1) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, o2) = last.addingReportingOverflow(step)
                overflow = overflow || o1 || o2
                last = sum
            }
            guard !overflow, last < s.numel else {
                throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' (size \(t.shape), stride \(t.strides), offset \(t.offset)) reaches past its storage of \(s.numel) elements")
            }
        }
        return CheckpointTensor(name: name, dtype: s.dtype, typeName: s.typeName, shape: t.shape, file: at.file,
                                byteOffset: at.offset + t.offset * s.dtype.byteWidth, strides: t.strides,
                                bigEndian: false, check: at.check)
    }
}
