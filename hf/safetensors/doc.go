// Package safetensors reads and writes the Hugging Face safetensors format
// (https://github.com/huggingface/safetensors), in pure Go.
//
// A safetensors file is an 8-byte little-endian header length N, then N bytes
// of JSON (the header, padded with spaces), then the data section. The header
// maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]},
// where the offsets are relative to the start of the data section; the
// optional "__metadata__" entry maps strings to strings.
//
// Reading: [Open] memory-maps a file (read-only) and validates the whole
// header before anything is trusted: header length bounded and inside the
// file, well-formed UTF-8 JSON without duplicate keys, known dtypes, shape
// times dtype size equal to the byte span, spans inside the data section and
// not overlapping. [File.Data] then returns zero-copy views into the mapping.
// [OpenModel] opens a Hugging Face model directory, either a single
// model.safetensors or a sharded checkpoint described by
// model.safetensors.index.json, and gives one name→tensor view across shards.
// PyTorch pickle checkpoints (pytorch_model.bin) are deliberately not
// supported: unpickling can run arbitrary code.
//
// Writing: [Write], [Save] and [SaveSharded] produce files laid out exactly as
// the Python/Rust safetensors library lays them out (tensors ordered by
// descending dtype alignment then name, header padded with spaces to a
// multiple of 8 bytes), and sharded checkpoints named and indexed as
// transformers' save_pretrained names and indexes them.
//
// All tensor bytes are raw little-endian values, row-major (C order). The
// helpers [BF16ToF32], [F32ToBF16], [F16ToF32], [F32ToF16], [DecodeFloat32],
// [EncodeFloat32], [DecodeInt64] and [EncodeInt64] convert between raw bytes
// and Go values, rounding to nearest even as PyTorch does.
//
// Every error returned by this package is prefixed with "safetensors:" and
// names the file and, where one is involved, the tensor.
package safetensors
