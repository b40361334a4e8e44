package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Tensor is a tensor to write: its name, dtype, shape and raw little-endian
// bytes (row-major).
type Tensor struct {
	Name  string
	DType DType
	// Shape is outermost first; empty for a scalar. Dimensions must be >= 0.
	Shape []int64
	// Data holds exactly NumElements*DType.Size() bytes. It may be nil when
	// DataFunc is set.
	Data []byte
	// DataFunc, used only when Data is nil, streams the tensor's bytes to w
	// (for example copying a device tensor chunk by chunk) so that the whole
	// checkpoint need not be in memory at once. It must write exactly
	// NumElements*DType.Size() bytes.
	DataFunc func(w io.Writer) error
}

// NumElements returns the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int64 {
	n, _ := shapeElements(t.Shape)
	return n
}

// byteSize returns the number of data bytes t must have, after checking its
// dtype and shape.
func (t *Tensor) byteSize() (int64, error) {
	if !t.DType.Valid() {
		return 0, fmt.Errorf("invalid dtype %v", t.DType)
	}
	n, ok := shapeElements(t.Shape)
	if !ok {
		return 0, fmt.Errorf("shape %v has a negative dimension or is too large", t.Shape)
	}
	size := n * int64(t.DType.Size())
	if size/int64(t.DType.Size()) != n {
		return 0, fmt.Errorf("shape %v is too large", t.Shape)
	}
	return size, nil
}

// check validates tensors for writing and returns their byte sizes.
func check(path string, tensors []Tensor) ([]int64, error) {
	sizes := make([]int64, len(tensors))
	seen := make(map[string]bool, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		fail := func(format string, args ...any) error {
			return &Error{Path: path, Tensor: t.Name, Msg: fmt.Sprintf(format, args...)}
		}
		switch {
		case t.Name == "":
			return nil, fail("empty tensor name (tensor %d)", i)
		case t.Name == metadataKey:
			return nil, fail("name is reserved for metadata")
		case seen[t.Name]:
			return nil, fail("duplicate tensor name")
		}
		seen[t.Name] = true
		size, err := t.byteSize()
		if err != nil {
			return nil, fail("%v", err)
		}
		switch {
		case t.Data != nil && t.DataFunc != nil:
			return nil, fail("both Data and DataFunc are set")
		case t.Data == nil && t.DataFunc == nil && size != 0:
			return nil, fail("no data (Data and DataFunc are nil)")
		case t.Data != nil && int64(len(t.Data)) != size:
			return nil, fail("shape %v of %v needs %d bytes, Data has %d", t.Shape, t.DType, size, len(t.Data))
		}
		sizes[i] = size
	}
	return sizes, nil
}

// layout orders tensors as the reference implementation does (descending
// dtype, then name) and returns the order and the encoded header: the 8-byte
// length followed by the JSON padded with spaces to a multiple of 8 bytes.
func layout(tensors []Tensor, sizes []int64, metadata map[string]string) ([]int, []byte) {
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		ta, tb := &tensors[order[a]], &tensors[order[b]]
		if ta.DType != tb.DType {
			return ta.DType > tb.DType
		}
		return ta.Name < tb.Name
	})
	var buf bytes.Buffer
	buf.Write(make([]byte, 8))
	buf.WriteByte('{')
	first := true
	if metadata != nil {
		buf.WriteString(`"__metadata__":{`)
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(&buf, k)
			buf.WriteByte(':')
			writeJSONString(&buf, metadata[k])
		}
		buf.WriteByte('}')
		first = false
	}
	var offset int64
	for _, i := range order {
		t := &tensors[i]
		if !first {
			buf.WriteByte(',')
		}
		first = false
		writeJSONString(&buf, t.Name)
		buf.WriteString(`:{"dtype":"`)
		buf.WriteString(t.DType.String())
		buf.WriteString(`","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(strconv.FormatInt(d, 10))
		}
		buf.WriteString(`],"data_offsets":[`)
		buf.WriteString(strconv.FormatInt(offset, 10))
		buf.WriteByte(',')
		offset += sizes[i]
		buf.WriteString(strconv.FormatInt(offset, 10))
		buf.WriteString("]}")
	}
	buf.WriteByte('}')
	for (buf.Len()-8)%8 != 0 {
		buf.WriteByte(' ')
	}
	b := buf.Bytes()
	binary.LittleEndian.PutUint64(b[:8], uint64(len(b)-8))
	return order, b
}

// writeJSONString writes s as a JSON string without HTML escaping (as
// serde_json does).
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)               // cannot fail for a string
	buf.Truncate(buf.Len() - 1) // Encode's newline
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Write writes tensors and metadata (nil for none) to w in the safetensors
// format and returns the number of bytes written. The layout is the
// reference implementation's: tensors ordered by descending dtype then name,
// "__metadata__" first with its keys sorted, header padded with spaces to a
// multiple of 8 bytes, data contiguous. Invalid tensors (bad dtype, duplicate
// name, data length not matching the shape) are reported before anything is
// written.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) (int64, error) {
	return write(w, "<writer>", tensors, metadata)
}

func write(w io.Writer, path string, tensors []Tensor, metadata map[string]string) (int64, error) {
	sizes, err := check(path, tensors)
	if err != nil {
		return 0, err
	}
	order, hdr := layout(tensors, sizes, metadata)
	cw := &countWriter{w: w}
	if _, err := cw.Write(hdr); err != nil {
		return cw.n, &Error{Path: path, Msg: err.Error()}
	}
	for _, i := range order {
		t := &tensors[i]
		if t.Data != nil {
			if _, err := cw.Write(t.Data); err != nil {
				return cw.n, &Error{Path: path, Tensor: t.Name, Msg: err.Error()}
			}
			continue
		}
		if sizes[i] == 0 {
			continue
		}
		start := cw.n
		if err := t.DataFunc(cw); err != nil {
			return cw.n, &Error{Path: path, Tensor: t.Name, Msg: "DataFunc: " + err.Error()}
		}
		if got := cw.n - start; got != sizes[i] {
			return cw.n, &Error{Path: path, Tensor: t.Name, Msg: fmt.Sprintf("DataFunc wrote %d bytes, want %d", got, sizes[i])}
		}
	}
	return cw.n, nil
}

// Marshal returns the safetensors encoding of tensors and metadata, as
// written by [Write].
func Marshal(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := write(&buf, "<memory>", tensors, metadata); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Save writes tensors and metadata (nil for none) to the file at path, as
// [Write] does. The file is written to a temporary file in the same directory,
// synced, then renamed over path, so readers never see a partial file and an
// existing file that is open (mapped) stays valid for its readers.
func Save(path string, tensors []Tensor, metadata map[string]string) error {
	return atomicWrite(path, func(w io.Writer) error {
		_, err := write(w, path, tensors, metadata)
		return err
	})
}

// atomicWrite writes path through a temporary file and a rename.
func atomicWrite(path string, fill func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := fill(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return &Error{Path: path, Msg: err.Error()}
	}
	if err := tmp.Sync(); err != nil {
		return &Error{Path: path, Msg: err.Error()}
	}
	if err := tmp.Chmod(0o644); err != nil {
		return &Error{Path: path, Msg: err.Error()}
	}
	if err := tmp.Close(); err != nil {
		return &Error{Path: path, Msg: err.Error()}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
