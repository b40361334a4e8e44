package safetensors

import (
	"errors"
	"fmt"
	"math"
	"os"
)

// Source is what [File] and [Model] have in common: a set of named tensors
// whose raw bytes can be read. Loaders can accept a Source to work on single
// files and sharded checkpoints alike.
type Source interface {
	// Names returns the tensor names in sorted order.
	Names() []string
	// Info returns the description of the named tensor.
	Info(name string) (TensorInfo, bool)
	// Data returns the named tensor's raw little-endian bytes.
	Data(name string) ([]byte, error)
}

var (
	_ Source = (*File)(nil)
	_ Source = (*Model)(nil)
)

// File is an open safetensors file. Its methods may be called from several
// goroutines at once, except Close.
type File struct {
	path    string
	buf     []byte // the whole file
	h       *header
	release func() error // unmaps buf; nil after Close
}

// Open memory-maps the safetensors file at path (read-only) and validates
// its header; see the package documentation for what is checked. The caller
// must Close the file when done; slices returned by [File.Data] are invalid
// after that. The file must not be truncated or rewritten in place while it is
// open ([Save] replaces files atomically, which is safe).
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.IsDir() {
		return nil, &Error{Path: path, Msg: "is a directory (use OpenModel for a model directory)"}
	}
	size := st.Size()
	if size > math.MaxInt {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("file of %d bytes is too large to map", size)}
	}
	if size < 8 {
		buf, _ := os.ReadFile(path)
		_, err := parseHeader(path, buf)
		if err == nil {
			err = &Error{Path: path, Msg: "file too short"}
		}
		return nil, err
	}
	buf, release, err := mapFile(f, int(size))
	if err != nil {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("mmap: %v", err)}
	}
	h, err := parseHeader(path, buf)
	if err != nil {
		release()
		return nil, err
	}
	return &File{path: path, buf: buf, h: h, release: release}, nil
}

// FromBytes validates buf as the complete contents of a safetensors file and
// returns a File whose Data views alias buf (no copy). name is used in error
// messages. Close is a no-op for such a file, apart from invalidating it.
func FromBytes(name string, buf []byte) (*File, error) {
	h, err := parseHeader(name, buf)
	if err != nil {
		return nil, err
	}
	return &File{path: name, buf: buf, h: h, release: func() error { return nil }}, nil
}

// Close unmaps the file. Slices returned by Data must not be used afterwards
// (reading them would fault). Closing twice is an error.
func (f *File) Close() error {
	if f.release == nil {
		return &Error{Path: f.path, Msg: "already closed"}
	}
	err := f.release()
	f.release = nil
	f.buf = nil
	if err != nil {
		return &Error{Path: f.path, Msg: fmt.Sprintf("munmap: %v", err)}
	}
	return nil
}

// Path returns the path given to Open (or the name given to FromBytes).
func (f *File) Path() string { return f.path }

// Len returns the number of tensors.
func (f *File) Len() int { return len(f.h.names) }

// Names returns the tensor names in sorted order (a new slice).
func (f *File) Names() []string { return append([]string(nil), f.h.names...) }

// HeaderSize returns the length N of the JSON header; tensor data starts at
// byte 8+N of the file.
func (f *File) HeaderSize() int64 { return f.h.size }

// Info returns the description of the named tensor and whether it exists.
// The returned Shape is a copy.
func (f *File) Info(name string) (TensorInfo, bool) {
	info, ok := f.h.infos[name]
	if ok {
		info.Shape = append([]int64{}, info.Shape...)
	}
	return info, ok
}

// Metadata returns a copy of the header's __metadata__ map (nil if absent).
func (f *File) Metadata() map[string]string {
	if f.h.metadata == nil {
		return nil
	}
	md := make(map[string]string, len(f.h.metadata))
	for k, v := range f.h.metadata {
		md[k] = v
	}
	return md
}

// Data returns the raw little-endian bytes of the named tensor: a zero-copy
// view into the mapped file, valid until Close. The slice is read-only:
// writing to it faults for files opened with Open. Its capacity equals its
// length, so appending copies.
func (f *File) Data(name string) ([]byte, error) {
	if f.release == nil {
		return nil, &Error{Path: f.path, Tensor: name, Msg: "file is closed"}
	}
	info, ok := f.h.infos[name]
	if !ok {
		return nil, &Error{Path: f.path, Tensor: name, Msg: "no such tensor"}
	}
	end := info.Offset + info.Size
	return f.buf[info.Offset:end:end], nil
}

// Float32s decodes the named tensor (F32, F16, BF16, F64 or F8) into a new
// []float32 of NumElements values.
func (f *File) Float32s(name string) ([]float32, error) { return float32s(f, f.path, name) }

// Int64s decodes the named tensor (an integer or BOOL dtype) into a new
// []int64 of NumElements values.
func (f *File) Int64s(name string) ([]int64, error) { return int64s(f, f.path, name) }

// Tensor returns the named tensor with Data aliasing the file (see Data), for
// example to write it elsewhere with [Save].
func (f *File) Tensor(name string) (Tensor, error) { return tensorOf(f, name) }

// Tensors returns all tensors in name order, with Data aliasing the file.
func (f *File) Tensors() ([]Tensor, error) { return tensorsOf(f) }

func float32s(s Source, path, name string) ([]float32, error) {
	info, b, err := infoData(s, name)
	if err != nil {
		return nil, err
	}
	out, err := DecodeFloat32(nil, info.DType, b)
	if err != nil {
		return nil, &Error{Path: path, Tensor: name, Msg: trimPrefix(err)}
	}
	return out, nil
}

func int64s(s Source, path, name string) ([]int64, error) {
	info, b, err := infoData(s, name)
	if err != nil {
		return nil, err
	}
	out, err := DecodeInt64(nil, info.DType, b)
	if err != nil {
		return nil, &Error{Path: path, Tensor: name, Msg: trimPrefix(err)}
	}
	return out, nil
}

func infoData(s Source, name string) (TensorInfo, []byte, error) {
	b, err := s.Data(name)
	if err != nil {
		return TensorInfo{}, nil, err
	}
	info, _ := s.Info(name)
	return info, b, nil
}

func tensorOf(s Source, name string) (Tensor, error) {
	info, b, err := infoData(s, name)
	if err != nil {
		return Tensor{}, err
	}
	return Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: b}, nil
}

func tensorsOf(s Source) ([]Tensor, error) {
	names := s.Names()
	out := make([]Tensor, 0, len(names))
	for _, name := range names {
		t, err := tensorOf(s, name)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// trimPrefix removes this package's "safetensors: " prefix from a nested
// error message.
func trimPrefix(err error) string {
	const p = "safetensors: "
	s := err.Error()
	var e *Error
	if len(s) > len(p) && s[:len(p)] == p && !errors.As(err, &e) {
		return s[len(p):]
	}
	return s
}
