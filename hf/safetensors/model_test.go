package safetensors

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenModelFixtures(t *testing.T) {
	root := fixtureRoot(t)
	single, err := OpenModel(filepath.Join(root, "llama-tiny"))
	require.NoError(t, err)
	defer single.Close()
	assert.False(t, single.Sharded())
	sharded, err := OpenModel(filepath.Join(root, "llama-tiny-bf16-sharded"))
	require.NoError(t, err)
	defer sharded.Close()
	assert.True(t, sharded.Sharded())
	assert.Len(t, sharded.Files(), 4)
	assert.Equal(t, 21, sharded.Len())
	assert.Equal(t, single.Names(), sharded.Names())
	assert.Equal(t, map[string]string{"format": "pt"}, sharded.Metadata())
	assert.JSONEq(t, "434816", string(sharded.IndexMetadata()["total_size"]))
	assert.Nil(t, single.IndexMetadata())

	// The bf16 shards hold the f32 weights rounded to nearest even, which
	// checks F32ToBF16 against PyTorch on real data.
	var total int64
	for _, name := range sharded.Names() {
		a, _ := single.Info(name)
		b, ok := sharded.Info(name)
		require.True(t, ok)
		assert.Equal(t, F32, a.DType)
		assert.Equal(t, BF16, b.DType)
		assert.Equal(t, a.Shape, b.Shape)
		total += b.Size
		f32, err := single.Float32s(name)
		require.NoError(t, err)
		raw, err := sharded.Data(name)
		require.NoError(t, err)
		want, err := EncodeFloat32(nil, BF16, f32)
		require.NoError(t, err)
		require.Equal(t, want, raw, name)
		f, ok := sharded.File(name)
		require.True(t, ok)
		assert.True(t, strings.HasPrefix(filepath.Base(f.Path()), "model-0000"))
	}
	assert.Equal(t, int64(434816), total)
	_, err = sharded.Data("nope")
	assert.ErrorContains(t, err, `tensor "nope": no such tensor`)

	// Opening the index file or the single file directly works too.
	m, err := OpenModel(filepath.Join(root, "llama-tiny-bf16-sharded", IndexFileName))
	require.NoError(t, err)
	assert.Equal(t, 21, m.Len())
	require.NoError(t, m.Close())
	m, err = OpenModel(filepath.Join(root, "llama-tiny", "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, 21, m.Len())
	require.NoError(t, m.Close())
}

// TestSaveShardedReproducesFixture re-shards the bf16 fixture with a 100 kB
// limit and expects the very files transformers wrote.
func TestSaveShardedReproducesFixture(t *testing.T) {
	src := filepath.Join(fixtureRoot(t), "llama-tiny-bf16-sharded")
	m, err := OpenModel(src)
	require.NoError(t, err)
	defer m.Close()
	ts, err := m.Tensors()
	require.NoError(t, err)
	// Shuffle the input order: the output must not depend on it.
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name > ts[j].Name })
	dir := t.TempDir()
	written, err := SaveSharded(dir, ts, 100_000, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
		"model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors", IndexFileName}, written)
	for _, name := range written {
		want, err := os.ReadFile(filepath.Join(src, name))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		if name == IndexFileName {
			assert.Equal(t, string(want), string(got), "index differs from json.dumps(indent=2, sort_keys=True)")
			continue
		}
		assert.True(t, bytes.Equal(want, got), "%s differs from the transformers-written shard", name)
	}
}

func TestSaveShardedSingleAndStale(t *testing.T) {
	mk := func(name string, n int) Tensor {
		return Tensor{Name: name, DType: U8, Shape: []int64{int64(n)}, Data: bytes.Repeat([]byte{byte(n)}, n)}
	}
	ts := []Tensor{mk("a", 40), mk("b", 40), mk("c", 150), mk("d", 10), mk("e", 60)}
	dir := t.TempDir()
	written, err := SaveSharded(dir, ts, 100, map[string]string{"step": "7"})
	require.NoError(t, err)
	// Name order a b c d e: a+b = 80 bytes; c (150) exceeds the limit and
	// gets its own shard, appended before the still-open [a b]; d fits
	// (90); e (60) would overflow, so [a b d] closes and [e] starts.
	require.Len(t, written, 4)
	var idx struct {
		Metadata  map[string]int64
		WeightMap map[string]string `json:"weight_map"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, IndexFileName))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &idx))
	assert.Equal(t, map[string]string{
		"c": "model-00001-of-00003.safetensors",
		"a": "model-00002-of-00003.safetensors", "b": "model-00002-of-00003.safetensors",
		"d": "model-00002-of-00003.safetensors", "e": "model-00003-of-00003.safetensors",
	}, idx.WeightMap)
	assert.Equal(t, int64(300), idx.Metadata["total_size"])
	assert.Equal(t, int64(300), idx.Metadata["total_parameters"])
	m, err := OpenModel(dir)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"format": "pt", "step": "7"}, m.Metadata())
	for _, tt := range ts {
		d, err := m.Data(tt.Name)
		require.NoError(t, err)
		assert.Equal(t, tt.Data, d)
	}
	require.NoError(t, m.Close())

	// Saving again unsharded removes the index and the old shards.
	written, err = SaveSharded(dir, ts, 0, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{SingleFileName}, written)
	entries, _ := os.ReadDir(dir)
	require.Len(t, entries, 1)
	assert.Equal(t, SingleFileName, entries[0].Name())
	m, err = OpenModel(dir)
	require.NoError(t, err)
	assert.False(t, m.Sharded())
	assert.Equal(t, 5, m.Len())
	require.NoError(t, m.Close())

	// Re-sharding removes model.safetensors.
	_, err = SaveSharded(dir, ts, 100, nil)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, SingleFileName))
	assert.True(t, os.IsNotExist(err))

	_, err = SaveSharded(dir, ts, -1, nil)
	assert.ErrorContains(t, err, "negative")
	_, err = SaveSharded(dir, append(ts, mk("a", 1)), 100, nil)
	assert.ErrorContains(t, err, `tensor "a": duplicate`)
}

// copyFixture copies the sharded fixture into a writable temp dir.
func copyFixture(t *testing.T) string {
	src := filepath.Join(fixtureRoot(t), "llama-tiny-bf16-sharded")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
	return dir
}

func editIndex(t *testing.T, dir string, edit func(wm map[string]any, top map[string]any)) {
	p := filepath.Join(dir, IndexFileName)
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	var top map[string]any
	require.NoError(t, json.Unmarshal(raw, &top))
	edit(top["weight_map"].(map[string]any), top)
	raw, err = json.Marshal(top)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, raw, 0o644))
}

func TestShardedCorrupt(t *testing.T) {
	const s1, s3 = "model-00001-of-00004.safetensors", "model-00003-of-00004.safetensors"
	cases := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{"missing-shard", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, s3)))
		}, []string{"shard " + s3 + " listed in weight_map is missing"}},
		{"duplicate-across-shards", func(t *testing.T, dir string) {
			// Shard 1 also gets model.norm.weight (which lives in shard 4).
			f, err := Open(filepath.Join(dir, s1))
			require.NoError(t, err)
			ts, _ := f.Tensors()
			g, err := Open(filepath.Join(dir, "model-00004-of-00004.safetensors"))
			require.NoError(t, err)
			norm, _ := g.Tensor("model.norm.weight")
			ts = append(ts, norm)
			require.NoError(t, Save(filepath.Join(dir, s1), ts, map[string]string{"format": "pt"}))
			f.Close()
			g.Close()
		}, []string{`tensor "model.norm.weight"`, "is in shard " + s1 + " but weight_map puts it in model-00004-of-00004.safetensors"}},
		{"not-in-shard", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { wm["lm_head.weight"] = s3 })
		}, []string{`tensor "lm_head.weight"`, "weight_map puts tensor in " + s3 + ", which does not contain it"}},
		{"listed-tensor-missing", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { wm["model.extra"] = s3 })
		}, []string{`tensor "model.extra"`, "weight_map puts tensor in " + s3 + ", which does not contain it"}},
		{"unlisted-tensor", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { delete(wm, "model.norm.weight") })
		}, []string{`tensor "model.norm.weight"`, "not listed in weight_map"}},
		{"path-traversal", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { wm["lm_head.weight"] = "../" + s1 })
		}, []string{`tensor "lm_head.weight"`, "not a plain file name"}},
		{"shard-not-string", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { wm["lm_head.weight"] = 3 })
		}, []string{`tensor "lm_head.weight"`, "want a shard file name"}},
		{"no-weight-map", func(t *testing.T, dir string) {
			editIndex(t, dir, func(_, top map[string]any) { delete(top, "weight_map") })
		}, []string{"missing weight_map"}},
		{"empty-weight-map", func(t *testing.T, dir string) {
			editIndex(t, dir, func(_, top map[string]any) { top["weight_map"] = map[string]any{} })
		}, []string{"weight_map is empty"}},
		{"index-not-json", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, IndexFileName), []byte("{not json"), 0o644))
		}, []string{"index not valid JSON"}},
		{"corrupt-shard", func(t *testing.T, dir string) {
			p := filepath.Join(dir, s3)
			b, _ := os.ReadFile(p)
			require.NoError(t, os.WriteFile(p, b[:len(b)-10], 0o644))
		}, []string{s3, "truncated", `tensor "`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyFixture(t)
			c.break_(t, dir)
			_, err := OpenModel(dir)
			require.Error(t, err)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "safetensors: "+dir), msg)
			for _, w := range c.want {
				assert.Contains(t, msg, w)
			}
		})
	}
}

func TestOpenModelPickleAndMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenModel(dir)
	assert.ErrorContains(t, err, "no model.safetensors or model.safetensors.index.json")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("PK\x03\x04junk"), 0o644))
	_, err = OpenModel(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "only pytorch_model.bin found")
	assert.Contains(t, err.Error(), "not supported")
	assert.Contains(t, err.Error(), "save_pretrained(dir, safe_serialization=True)")
	_, err = OpenModel(filepath.Join(dir, "pytorch_model.bin"))
	assert.ErrorContains(t, err, "pickle")
	_, err = Open(filepath.Join(dir, "pytorch_model.bin"))
	assert.ErrorContains(t, err, "pickle")
	_, err = Open(dir)
	assert.ErrorContains(t, err, "is a directory")
	_, err = OpenModel(filepath.Join(dir, "nonexistent"))
	assert.ErrorContains(t, err, "no such file")
}
