package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest header (JSON) length accepted, in bytes, as in
// the reference implementation (100 MB).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header entry holding string metadata.
const metadataKey = "__metadata__"

// Error is the error type returned for invalid files. Path is the file (or
// the name given to [FromBytes]); Tensor, if not empty, is the tensor whose
// entry is at fault.
type Error struct {
	Path   string
	Tensor string
	Msg    string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("safetensors: %s: tensor %q: %s", e.Path, e.Tensor, e.Msg)
	}
	return fmt.Sprintf("safetensors: %s: %s", e.Path, e.Msg)
}

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType DType
	// Shape is the tensor's shape, outermost dimension first; empty for a
	// scalar (one element).
	Shape []int64
	// Offset is the absolute byte offset of the tensor's first byte in the
	// file (8 + header length + data_offsets[0]).
	Offset int64
	// Size is the tensor's length in bytes: NumElements() * DType.Size().
	Size int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// member is one key/value pair of a JSON object, in file order.
type member struct {
	key   string
	value json.RawMessage
}

// objectMembers decodes raw as exactly one JSON object (surrounding white
// space allowed) and returns its members in order. Duplicate keys are an
// error: a safetensors header whose meaning depends on which duplicate wins
// is not trusted.
func objectMembers(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out []member
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not valid JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("not valid JSON: object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not valid JSON: value of %q: %v", key, err)
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		out = append(out, member{key, v})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("not valid JSON: trailing data after the object")
	}
	return out, nil
}

// jsonKind returns a short description of the JSON value raw for messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// parseUintArray decodes raw as a JSON array of non-negative integers that
// fit in an int64.
func parseUintArray(raw json.RawMessage) ([]int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("want an array of non-negative integers, got %s", jsonKind(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, fmt.Errorf("want an array of non-negative integers: %v", err)
	}
	out := make([]int64, len(elems))
	for i, e := range elems {
		s := string(bytes.TrimSpace(e))
		v, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return nil, fmt.Errorf("element %d is %s, want a non-negative integer below 2^63", i, truncate(s, 40))
		}
		out[i] = int64(v)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// header is the parsed, validated header of a file.
type header struct {
	size     int64 // N: header JSON length
	infos    map[string]TensorInfo
	names    []string // sorted
	metadata map[string]string
}

// parseHeader validates buf as a complete safetensors file (header and data
// section) and returns its header. name is used in error messages.
func parseHeader(name string, buf []byte) (*header, error) {
	h, err := parseHeader1(name, buf)
	if err != nil && isPickleLike(buf) {
		return nil, &Error{Path: name, Msg: pickleMsg}
	}
	return h, err
}

func parseHeader1(name string, buf []byte) (*header, error) {
	fail := func(tensor, format string, args ...any) error {
		return &Error{Path: name, Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
	}
	if len(buf) < 8 {
		return nil, fail("", "file is %d bytes, too short for the 8-byte header length (truncated?)", len(buf))
	}
	n := binary.LittleEndian.Uint64(buf[:8])
	if n > MaxHeaderSize {
		return nil, fail("", "header length %d exceeds the limit of %d bytes (not a safetensors file?)", n, MaxHeaderSize)
	}
	if n < 2 {
		return nil, fail("", "header length %d is too small for a JSON object", n)
	}
	if 8+n > uint64(len(buf)) {
		return nil, fail("", "header length %d runs past the end of the %d-byte file (truncated?)", n, len(buf))
	}
	hdr := buf[8 : 8+n]
	data := int64(len(buf)) - 8 - int64(n) // data section length
	if !utf8.Valid(hdr) {
		return nil, fail("", "header is not valid UTF-8")
	}
	if hdr[0] != '{' {
		return nil, fail("", "header does not start with '{' (not a safetensors file?)")
	}
	members, err := objectMembers(hdr)
	if err != nil {
		return nil, fail("", "header %v", err)
	}
	h := &header{size: int64(n), infos: make(map[string]TensorInfo, len(members))}
	type span struct {
		begin, end int64
		name       string
	}
	spans := make([]span, 0, len(members))
	for _, m := range members {
		if m.key == metadataKey {
			md, err := parseMetadata(m.value)
			if err != nil {
				return nil, fail("", "%s: %v", metadataKey, err)
			}
			h.metadata = md
			continue
		}
		info, begin, end, err := parseTensorInfo(m.key, m.value)
		if err != nil {
			return nil, fail(m.key, "%v", err)
		}
		if end > data {
			return nil, fail(m.key, "data_offsets [%d, %d] run past the end of the %d-byte data section (truncated?)", begin, end, data)
		}
		info.Offset = 8 + int64(n) + begin
		h.infos[m.key] = info
		h.names = append(h.names, m.key)
		if end > begin {
			spans = append(spans, span{begin, end, m.key})
		}
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].name < spans[j].name
	})
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, fail(spans[i].name, "data_offsets [%d, %d] overlap tensor %q at [%d, %d]",
				spans[i].begin, spans[i].end, spans[i-1].name, spans[i-1].begin, spans[i-1].end)
		}
	}
	sort.Strings(h.names)
	return h, nil
}

// parseMetadata decodes the __metadata__ value: an object of strings.
func parseMetadata(raw json.RawMessage) (map[string]string, error) {
	members, err := objectMembers(raw)
	if err != nil {
		return nil, err
	}
	md := make(map[string]string, len(members))
	for _, m := range members {
		var s string
		if bytes.TrimSpace(m.value)[0] != '"' || json.Unmarshal(m.value, &s) != nil {
			return nil, fmt.Errorf("value of %q is %s, want a string", m.key, jsonKind(m.value))
		}
		md[m.key] = s
	}
	return md, nil
}

// parseTensorInfo decodes and checks one tensor entry; begin and end are its
// data_offsets. It does not know the data section length.
func parseTensorInfo(name string, raw json.RawMessage) (info TensorInfo, begin, end int64, err error) {
	members, err := objectMembers(raw)
	if err != nil {
		return info, 0, 0, fmt.Errorf("entry is %s, want an object with dtype, shape and data_offsets", jsonKind(raw))
	}
	var haveDType, haveShape, haveOffsets bool
	var offsets []int64
	for _, m := range members {
		switch m.key {
		case "dtype":
			var s string
			if bytes.TrimSpace(m.value)[0] != '"' || json.Unmarshal(m.value, &s) != nil {
				return info, 0, 0, fmt.Errorf("dtype is %s, want a string", jsonKind(m.value))
			}
			dt, err := ParseDType(s)
			if err != nil {
				return info, 0, 0, fmt.Errorf("unknown dtype %q", truncate(s, 40))
			}
			info.DType = dt
			haveDType = true
		case "shape":
			shape, err := parseUintArray(m.value)
			if err != nil {
				return info, 0, 0, fmt.Errorf("shape: %v", err)
			}
			info.Shape = shape
			haveShape = true
		case "data_offsets":
			offsets, err = parseUintArray(m.value)
			if err != nil {
				return info, 0, 0, fmt.Errorf("data_offsets: %v", err)
			}
			if len(offsets) != 2 {
				return info, 0, 0, fmt.Errorf("data_offsets has %d elements, want 2", len(offsets))
			}
			haveOffsets = true
		}
		// Other keys are ignored, as by the reference implementation.
	}
	switch {
	case !haveDType:
		return info, 0, 0, errors.New("missing dtype")
	case !haveShape:
		return info, 0, 0, errors.New("missing shape")
	case !haveOffsets:
		return info, 0, 0, errors.New("missing data_offsets")
	}
	info.Name = name
	begin, end = offsets[0], offsets[1]
	if end < begin {
		return info, 0, 0, fmt.Errorf("data_offsets [%d, %d] end before they begin", begin, end)
	}
	numel, ok := shapeElements(info.Shape)
	if !ok || numel > math.MaxInt64/int64(info.DType.Size()) {
		return info, 0, 0, fmt.Errorf("shape %v is too large", info.Shape)
	}
	info.Size = numel * int64(info.DType.Size())
	if info.Size != end-begin {
		return info, 0, 0, fmt.Errorf("shape %v of %v needs %d bytes but data_offsets [%d, %d] span %d",
			info.Shape, info.DType, info.Size, begin, end, end-begin)
	}
	return info, begin, end, nil
}

// shapeElements returns the product of shape, and false on int64 overflow.
// Dimensions must be non-negative.
func shapeElements(shape []int64) (int64, bool) {
	for _, d := range shape {
		if d == 0 {
			return 0, true
		}
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 || n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// pickleMsg explains why PyTorch pickle checkpoints are refused.
const pickleMsg = "looks like a PyTorch pickle checkpoint (.bin/.pt), which is not supported " +
	"(unpickling can run arbitrary code); convert it with transformers: " +
	"model.save_pretrained(dir, safe_serialization=True)"

// isPickleLike reports whether buf starts like a PyTorch checkpoint: a zip
// archive (torch.save since 1.6) or a raw pickle (protocol 2+ opcode 0x80).
func isPickleLike(buf []byte) bool {
	return bytes.HasPrefix(buf, []byte("PK\x03\x04")) || (len(buf) >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5)
}
