package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixtureRoot returns the golden fixture root: $BLOCKLLM_FIXTURES or the
// repository's testdata/hf.
func fixtureRoot(t testing.TB) string {
	if r := os.Getenv("BLOCKLLM_FIXTURES"); r != "" {
		return r
	}
	r, err := filepath.Abs(filepath.Join("..", "..", "testdata", "hf"))
	require.NoError(t, err)
	return r
}

// fixtureFiles returns every .safetensors file under the fixture root.
func fixtureFiles(t testing.TB) []string {
	var out []string
	err := filepath.WalkDir(fixtureRoot(t), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".safetensors") {
			out = append(out, p)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, out, "no fixtures found")
	return out
}

// pyHeader parses a file's header independently with encoding/json.
func pyHeader(t testing.TB, b []byte) map[string]json.RawMessage {
	n := binary.LittleEndian.Uint64(b)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b[8:8+n], &m))
	return m
}

func TestFixturesOpen(t *testing.T) {
	for _, p := range fixtureFiles(t) {
		rel, _ := filepath.Rel(fixtureRoot(t), p)
		t.Run(rel, func(t *testing.T) {
			f, err := Open(p)
			require.NoError(t, err)
			defer func() { require.NoError(t, f.Close()) }()
			raw, err := os.ReadFile(p)
			require.NoError(t, err)
			hdr := pyHeader(t, raw)
			names := f.Names()
			require.True(t, sort.StringsAreSorted(names))
			_, hasMeta := hdr["__metadata__"]
			wantLen := len(hdr)
			if hasMeta {
				wantLen--
			}
			require.Equal(t, wantLen, len(names))
			require.Equal(t, wantLen, f.Len())
			for _, name := range names {
				var want struct {
					DType   string  `json:"dtype"`
					Shape   []int64 `json:"shape"`
					Offsets [2]int64
				}
				var ent map[string]json.RawMessage
				require.NoError(t, json.Unmarshal(hdr[name], &ent))
				require.NoError(t, json.Unmarshal(hdr[name], &want))
				require.NoError(t, json.Unmarshal(ent["data_offsets"], &want.Offsets))
				info, ok := f.Info(name)
				require.True(t, ok)
				assert.Equal(t, want.DType, info.DType.String())
				assert.Equal(t, want.Shape, info.Shape)
				start := 8 + f.HeaderSize()
				assert.Equal(t, start+want.Offsets[0], info.Offset)
				assert.Equal(t, want.Offsets[1]-want.Offsets[0], info.Size)
				d, err := f.Data(name)
				require.NoError(t, err)
				assert.Equal(t, raw[info.Offset:info.Offset+info.Size], d)
				assert.Equal(t, len(d), cap(d))
			}
			if hasMeta {
				assert.NotEmpty(t, f.Metadata())
			}
		})
	}
}

func TestFixtureValues(t *testing.T) {
	root := fixtureRoot(t)
	f, err := Open(filepath.Join(root, "llama-tiny", "model.safetensors"))
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, map[string]string{"format": "pt"}, f.Metadata())
	info, ok := f.Info("lm_head.weight")
	require.True(t, ok)
	assert.Equal(t, F32, info.DType)
	assert.Equal(t, []int64{1024, 64}, info.Shape)
	assert.Equal(t, int64(1024*64), info.NumElements())
	_, ok = f.Info("nope")
	assert.False(t, ok)
	_, err = f.Data("nope")
	assert.ErrorContains(t, err, `tensor "nope": no such tensor`)

	g, err := Open(filepath.Join(root, "llama-tiny", "golden.safetensors"))
	require.NoError(t, err)
	defer g.Close()
	ids, err := g.Int64s("input_ids")
	require.NoError(t, err)
	assert.Len(t, ids, 24)
	for _, id := range ids {
		assert.True(t, id >= 0 && id < 1024, "token id %d", id)
	}
	loss, err := g.Float32s("loss")
	require.NoError(t, err)
	require.Len(t, loss, 1)
	assert.Greater(t, loss[0], float32(0))
	_, err = g.Float32s("input_ids")
	assert.ErrorContains(t, err, "golden.safetensors")
	assert.ErrorContains(t, err, `"input_ids"`)
}

// TestFixtureRewriteIdentical writes the fixture tensors back and expects the
// exact bytes the Python safetensors library wrote.
func TestFixtureRewriteIdentical(t *testing.T) {
	root := fixtureRoot(t)
	paths, _ := filepath.Glob(filepath.Join(root, "llama-tiny-bf16-sharded", "model-*.safetensors"))
	paths = append(paths, filepath.Join(root, "llama-tiny", "model.safetensors"),
		filepath.Join(root, "roberta-tiny-sst2", "model.safetensors"))
	require.Len(t, paths, 6)
	for _, p := range paths {
		f, err := Open(p)
		require.NoError(t, err)
		ts, err := f.Tensors()
		require.NoError(t, err)
		got, err := Marshal(ts, f.Metadata())
		require.NoError(t, err)
		raw, _ := os.ReadFile(p)
		assert.True(t, bytes.Equal(raw, got), "%s: rewritten bytes differ", p)
		f.Close()
	}
}

// TestGoldenRewriteLayout checks mixed-dtype files (I64 before F32): the
// data section and the tensor offsets must match the Python writer's; only
// the order of __metadata__ keys (a hash map in Rust) may differ.
func TestGoldenRewriteLayout(t *testing.T) {
	for _, dir := range []string{"llama-tiny", "roberta-tiny-sst2", "llama-tiny-bf16-sharded"} {
		p := filepath.Join(fixtureRoot(t), dir, "golden.safetensors")
		f, err := Open(p)
		require.NoError(t, err)
		ts, err := f.Tensors()
		require.NoError(t, err)
		got, err := Marshal(ts, f.Metadata())
		require.NoError(t, err)
		raw, _ := os.ReadFile(p)
		g, err := FromBytes("rewritten", got)
		require.NoError(t, err)
		assert.Equal(t, f.HeaderSize(), g.HeaderSize(), dir)
		assert.Equal(t, raw[8+f.HeaderSize():], got[8+g.HeaderSize():], dir)
		for _, n := range f.Names() {
			a, _ := f.Info(n)
			b, _ := g.Info(n)
			assert.Equal(t, a, b, "%s %s", dir, n)
		}
		assert.Equal(t, f.Metadata(), g.Metadata())
		f.Close()
	}
}

func TestRoundTripAllDTypes(t *testing.T) {
	var ts []Tensor
	for i, dt := range DTypes() {
		shape := []int64{2, int64(i + 1)}
		data := make([]byte, 2*(i+1)*dt.Size())
		for j := range data {
			data[j] = byte(j*7 + i)
			if dt == BOOL {
				data[j] &= 1
			}
		}
		ts = append(ts, Tensor{Name: "t." + dt.String(), DType: dt, Shape: shape, Data: data})
	}
	ts = append(ts,
		Tensor{Name: "scalar", DType: F32, Shape: []int64{}, Data: []byte{0, 0, 0x80, 0x3f}},
		Tensor{Name: "empty", DType: F32, Shape: []int64{3, 0}, Data: nil},
		Tensor{Name: "empty2", DType: I64, Shape: []int64{0}, Data: []byte{}},
		Tensor{Name: `odd "name" <&>`, DType: U8, Shape: []int64{1}, Data: []byte{9}},
	)
	md := map[string]string{"format": "pt", "note": "ünïcode"}
	path := filepath.Join(t.TempDir(), "all.safetensors")
	require.NoError(t, Save(path, ts, md))
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, md, f.Metadata())
	assert.Equal(t, len(ts), f.Len())
	for _, want := range ts {
		info, ok := f.Info(want.Name)
		require.True(t, ok, want.Name)
		assert.Equal(t, want.DType, info.DType)
		assert.Equal(t, want.Shape, info.Shape)
		d, err := f.Data(want.Name)
		require.NoError(t, err)
		if len(want.Data) == 0 {
			assert.Empty(t, d)
		} else {
			assert.Equal(t, want.Data, d, want.Name)
		}
	}
	raw, _ := os.ReadFile(path)
	assert.Equal(t, int64(0), (8+f.HeaderSize())%8, "data section 8-byte aligned")
	// Data offsets: descending dtype order, so the first tensor is U64.
	hdr := string(raw[8 : 8+f.HeaderSize()])
	assert.True(t, strings.HasPrefix(hdr, `{"__metadata__":{"format":"pt","note":"ünïcode"},"t.U64":`), hdr)
	assert.Contains(t, hdr, `"odd \"name\" <&>"`)
	// Write and Marshal agree; DataFunc streams the same bytes.
	var buf bytes.Buffer
	n, err := Write(&buf, ts, md)
	require.NoError(t, err)
	assert.Equal(t, int64(len(raw)), n)
	assert.Equal(t, raw, buf.Bytes())
	streamed := make([]Tensor, len(ts))
	for i, tt := range ts {
		data := tt.Data
		tt.Data = nil
		tt.DataFunc = func(w io.Writer) error { _, err := w.Write(data); return err }
		streamed[i] = tt
	}
	got, err := Marshal(streamed, md)
	require.NoError(t, err)
	assert.Equal(t, raw, got)
}

func TestWriteErrors(t *testing.T) {
	good := Tensor{Name: "a", DType: F32, Shape: []int64{2}, Data: make([]byte, 8)}
	cases := []struct {
		name string
		ts   []Tensor
		want string
	}{
		{"dup", []Tensor{good, good}, `tensor "a": duplicate tensor name`},
		{"short", []Tensor{{Name: "b", DType: F32, Shape: []int64{3}, Data: make([]byte, 8)}}, `tensor "b": shape [3] of F32 needs 12 bytes, Data has 8`},
		{"dtype", []Tensor{{Name: "c", Shape: []int64{1}, Data: make([]byte, 1)}}, `tensor "c": invalid dtype INVALID`},
		{"neg", []Tensor{{Name: "d", DType: U8, Shape: []int64{-1}, Data: nil}}, `tensor "d": shape [-1] has a negative dimension`},
		{"reserved", []Tensor{{Name: "__metadata__", DType: U8, Shape: []int64{1}, Data: []byte{1}}}, `reserved`},
		{"noname", []Tensor{{DType: U8, Shape: []int64{1}, Data: []byte{1}}}, `empty tensor name`},
		{"nodata", []Tensor{{Name: "e", DType: U8, Shape: []int64{1}}}, `tensor "e": no data`},
		{"both", []Tensor{{Name: "f", DType: U8, Shape: []int64{1}, Data: []byte{1}, DataFunc: func(io.Writer) error { return nil }}}, `both Data and DataFunc`},
		{"funcshort", []Tensor{{Name: "g", DType: U8, Shape: []int64{2}, DataFunc: func(w io.Writer) error { _, err := w.Write([]byte{1}); return err }}}, `tensor "g": DataFunc wrote 1 bytes, want 2`},
		{"funcerr", []Tensor{{Name: "h", DType: U8, Shape: []int64{2}, DataFunc: func(w io.Writer) error { return errors.New("boom") }}}, `tensor "h": DataFunc: boom`},
		{"huge", []Tensor{{Name: "i", DType: F64, Shape: []int64{1 << 40, 1 << 40}}}, `too large`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.safetensors")
			err := Save(path, c.ts, nil)
			require.Error(t, err)
			assert.ErrorContains(t, err, c.want)
			assert.True(t, strings.HasPrefix(err.Error(), "safetensors: "), err.Error())
			_, statErr := os.Stat(path)
			assert.True(t, os.IsNotExist(statErr), "no file must be left behind")
			left, _ := os.ReadDir(filepath.Dir(path))
			assert.Empty(t, left, "no temporary file must be left behind")
		})
	}
}

// TestSaveOverOpenFile replaces a file that is open and mapped: the open
// File keeps its old contents.
func TestSaveOverOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	require.NoError(t, Save(path, []Tensor{{Name: "w", DType: U8, Shape: []int64{3}, Data: []byte{1, 2, 3}}}, nil))
	f, err := Open(path)
	require.NoError(t, err)
	old, err := f.Data("w")
	require.NoError(t, err)
	require.NoError(t, Save(path, []Tensor{{Name: "w", DType: U8, Shape: []int64{3}, Data: []byte{7, 8, 9}}}, nil))
	assert.Equal(t, []byte{1, 2, 3}, old)
	require.NoError(t, f.Close())
	assert.ErrorContains(t, f.Close(), "already closed")
	_, err = f.Data("w")
	assert.ErrorContains(t, err, "closed")
	g, err := Open(path)
	require.NoError(t, err)
	d, _ := g.Data("w")
	assert.Equal(t, []byte{7, 8, 9}, d)
	g.Close()
}
