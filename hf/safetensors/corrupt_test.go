package safetensors

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawFile builds a file from a header string and a data section.
func rawFile(hdr string, data []byte) []byte {
	b := make([]byte, 8, 8+len(hdr)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, data...)
}

func TestCorruptHeaders(t *testing.T) {
	d16 := make([]byte, 16)
	cases := []struct {
		name string
		file []byte
		want []string // substrings of the error
	}{
		{"empty", nil, []string{"file is 0 bytes", "truncated"}},
		{"short", []byte{1, 2, 3}, []string{"too short"}},
		{"huge-length", append(binary.LittleEndian.AppendUint64(nil, 1<<60), '{', '}'), []string{"exceeds the limit"}},
		{"length-past-end", append(binary.LittleEndian.AppendUint64(nil, 1000), []byte(`{"a":1}`)...), []string{"header length 1000 runs past the end", "truncated"}},
		{"tiny-length", rawFile("{", nil), []string{"too small"}},
		{"not-json", rawFile("hello world!", nil), []string{"does not start with '{'"}},
		{"broken-json", rawFile(`{"a":{"dtype":"F32",`, nil), []string{"not valid JSON"}},
		{"array", rawFile(`[1,2,3]   `, nil), []string{"does not start with '{'"}},
		{"trailing", rawFile(`{}{}`, nil), []string{"trailing data"}},
		{"bad-utf8", rawFile("{\"\xff\":1}", nil), []string{"not valid UTF-8"}},
		{"entry-not-object", rawFile(`{"w":[1,2]}`, nil), []string{`tensor "w"`, "want an object"}},
		{"unknown-dtype", rawFile(`{"w":{"dtype":"F128","shape":[2],"data_offsets":[0,16]}}`, d16), []string{`tensor "w"`, `unknown dtype "F128"`}},
		{"dtype-not-string", rawFile(`{"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}`, d16), []string{`tensor "w"`, "dtype is a number"}},
		{"missing-dtype", rawFile(`{"w":{"shape":[2],"data_offsets":[0,8]}}`, d16), []string{`tensor "w"`, "missing dtype"}},
		{"missing-shape", rawFile(`{"w":{"dtype":"F32","data_offsets":[0,8]}}`, d16), []string{`tensor "w"`, "missing shape"}},
		{"missing-offsets", rawFile(`{"w":{"dtype":"F32","shape":[2]}}`, d16), []string{`tensor "w"`, "missing data_offsets"}},
		{"shape-size-mismatch", rawFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, d16), []string{`tensor "w"`, "shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8"}},
		{"negative-dim", rawFile(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, d16), []string{`tensor "w"`, "shape: element 0 is -2"}},
		{"float-dim", rawFile(`{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}`, d16), []string{`tensor "w"`, "shape: element 0 is 2.0"}},
		{"string-dim", rawFile(`{"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}`, d16), []string{`tensor "w"`, "shape: element 0"}},
		{"shape-not-array", rawFile(`{"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}`, d16), []string{`tensor "w"`, "shape: want an array"}},
		{"shape-overflow", rawFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, d16), []string{`tensor "w"`, "too large"}},
		{"three-offsets", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}}`, d16), []string{`tensor "w"`, "has 3 elements"}},
		{"offsets-reversed", rawFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, d16), []string{`tensor "w"`, "end before they begin"}},
		{"offset-beyond-data", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}`, d16), []string{`tensor "w"`, "run past the end of the 16-byte data section"}},
		{"offset-huge", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]}}`, d16), []string{`tensor "w"`, "run past the end"}},
		{"offset-too-big-for-int64", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}}`, d16), []string{`tensor "w"`, "data_offsets: element 0"}},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, d16), []string{`tensor "b"`, `overlap tensor "a"`}},
		{"same-span", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}`, d16), []string{`overlap tensor`}},
		{"duplicate-key", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, d16), []string{`duplicate key "a"`}},
		{"duplicate-inner-key", rawFile(`{"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}`, d16), []string{`tensor "a"`}},
		{"metadata-not-string", rawFile(`{"__metadata__":{"format":1}}`, nil), []string{"__metadata__", `value of "format" is a number, want a string`}},
		{"metadata-not-object", rawFile(`{"__metadata__":"pt"}`, nil), []string{"__metadata__", "not a JSON object"}},
		{"pickle-zip", append([]byte("PK\x03\x04"), make([]byte, 100)...), []string{"PyTorch pickle", "save_pretrained", "safe_serialization=True"}},
		{"pickle-raw", append([]byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46}, make([]byte, 100)...), []string{"PyTorch pickle"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromBytes("bad.safetensors", c.file)
			require.Error(t, err)
			var e *Error
			require.True(t, errors.As(err, &e), "error type %T", err)
			assert.Equal(t, "bad.safetensors", e.Path)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "safetensors: bad.safetensors: "), msg)
			for _, w := range c.want {
				assert.Contains(t, msg, w)
			}
			// The same bytes on disk give the same error through Open.
			p := filepath.Join(t.TempDir(), "bad.safetensors")
			require.NoError(t, os.WriteFile(p, c.file, 0o644))
			_, err2 := Open(p)
			require.Error(t, err2)
			assert.Equal(t, strings.ReplaceAll(msg, "bad.safetensors", p), err2.Error())
		})
	}
}

func TestValidEdgeCases(t *testing.T) {
	// Padding spaces, unknown entry keys, zero-size tensors sharing an
	// offset, scalars and a gap between tensors are all accepted.
	hdr := `{"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"y":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]},` +
		`"s":{"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":true},"u":{"dtype":"U8","shape":[2],"data_offsets":[8,10]}}   `
	f, err := FromBytes("ok", rawFile(hdr, make([]byte, 10)))
	require.NoError(t, err)
	assert.Equal(t, []string{"s", "u", "y", "z"}, f.Names())
	info, _ := f.Info("s")
	assert.Equal(t, int64(1), info.NumElements())
	assert.Empty(t, info.Shape)
	d, err := f.Data("y")
	require.NoError(t, err)
	assert.Empty(t, d)
	assert.Nil(t, f.Metadata())
	// Empty header object.
	f, err = FromBytes("empty", rawFile("{}      ", nil))
	require.NoError(t, err)
	assert.Equal(t, 0, f.Len())
}

// TestTruncatedFixture cuts a real file at several points: every cut gives
// an error naming the file, and a cut in the data section names the tensor.
func TestTruncatedFixture(t *testing.T) {
	src := filepath.Join(fixtureRoot(t), "roberta-tiny-sst2", "model.safetensors")
	raw, err := os.ReadFile(src)
	require.NoError(t, err)
	f, err := FromBytes(src, raw)
	require.NoError(t, err)
	dataStart := 8 + int(f.HeaderSize())
	dir := t.TempDir()
	for _, cut := range []int{0, 4, 8, 100, dataStart - 1, dataStart, dataStart + 1000, len(raw) - 1} {
		p := filepath.Join(dir, "cut.safetensors")
		require.NoError(t, os.WriteFile(p, raw[:cut], 0o644))
		_, err := Open(p)
		require.Error(t, err, "cut at %d", cut)
		assert.Contains(t, err.Error(), p)
		assert.Contains(t, err.Error(), "truncated", "cut at %d: %v", cut, err)
		if cut >= dataStart {
			assert.Contains(t, err.Error(), "tensor \"", "cut at %d", cut)
		}
	}
	// Flipping any single byte of the header never panics.
	b := append([]byte(nil), raw...)
	for i := 0; i < dataStart; i++ {
		b[i] ^= 0x5a
		if f, err := FromBytes("flip", b); err == nil {
			for _, n := range f.Names() {
				_, err := f.Data(n)
				require.NoError(t, err)
			}
		}
		b[i] ^= 0x5a
	}
}
