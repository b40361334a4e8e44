package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// File names used by Hugging Face model directories.
const (
	// SingleFileName is the weights file of an unsharded checkpoint.
	SingleFileName = "model.safetensors"
	// IndexFileName is the index of a sharded checkpoint.
	IndexFileName = "model.safetensors.index.json"
	// DefaultMaxShardBytes is the shard size limit [SaveSharded] uses when
	// given 0: 5 GB, transformers' historical save_pretrained default.
	DefaultMaxShardBytes = 5_000_000_000
)

// shardNameRE matches the shard names save_pretrained writes.
var shardNameRE = regexp.MustCompile(`^model-[0-9]{5}-of-[0-9]{5}\.safetensors$`)

// pickleNames are PyTorch pickle checkpoints that transformers may write.
var pickleNames = []string{"pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth"}

// Model is a Hugging Face checkpoint: one safetensors file or several shards
// listed by an index, seen as one set of named tensors. Its methods may be
// called from several goroutines at once, except Close.
type Model struct {
	path      string  // directory, index or file given to OpenModel
	files     []*File // in shard order
	owner     map[string]*File
	names     []string // sorted
	indexMeta map[string]json.RawMessage
	sharded   bool
}

// OpenModel opens a checkpoint. path may be
//
//   - a model directory, holding either model.safetensors.index.json and its
//     shards (used if present) or model.safetensors;
//   - a model.safetensors.index.json file (or any *.json index);
//   - a single .safetensors file.
//
// For a sharded checkpoint every weight_map entry must exist in the shard it
// names, no tensor may appear in two shards, every tensor of a shard must be
// listed, and shard names must be plain file names in the index's directory.
// A directory that holds only a PyTorch pickle checkpoint
// (pytorch_model.bin) gives an error saying how to convert it. The caller must
// Close the model.
func OpenModel(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.IsDir() {
		switch {
		case strings.HasSuffix(path, ".json"):
			return openIndex(path)
		case strings.HasSuffix(path, ".bin") || strings.HasSuffix(path, ".pt") || strings.HasSuffix(path, ".pth"):
			return nil, &Error{Path: path, Msg: "PyTorch pickle checkpoints are not supported " +
				"(unpickling can run arbitrary code); convert with transformers: model.save_pretrained(dir, safe_serialization=True)"}
		}
		return openSingle(path, path)
	}
	index := filepath.Join(path, IndexFileName)
	if _, err := os.Stat(index); err == nil {
		return openIndex(index)
	}
	single := filepath.Join(path, SingleFileName)
	if _, err := os.Stat(single); err == nil {
		return openSingle(path, single)
	}
	for _, p := range pickleNames {
		if _, err := os.Stat(filepath.Join(path, p)); err == nil {
			return nil, &Error{Path: path, Msg: fmt.Sprintf("only %s found: PyTorch pickle checkpoints are not supported "+
				"(unpickling can run arbitrary code); convert with transformers: "+
				"model.save_pretrained(dir, safe_serialization=True)", p)}
		}
	}
	if shards, _ := filepath.Glob(filepath.Join(path, "*.safetensors")); len(shards) > 0 {
		names := make([]string, len(shards))
		for i, s := range shards {
			names[i] = filepath.Base(s)
		}
		if len(names) > 3 {
			names = append(names[:3], "...")
		}
		return nil, &Error{Path: path, Msg: fmt.Sprintf("%d safetensors file(s) (%s) but no %s or %s: a sharded checkpoint needs "+
			"its index, which maps every tensor to its shard (copy it from where the shards came from)",
			len(shards), strings.Join(names, ", "), SingleFileName, IndexFileName)}
	}
	return nil, &Error{Path: path, Msg: fmt.Sprintf("no %s or %s in directory", SingleFileName, IndexFileName)}
}

func openSingle(path, file string) (*Model, error) {
	f, err := Open(file)
	if err != nil {
		return nil, err
	}
	m := &Model{path: path, files: []*File{f}, owner: make(map[string]*File, f.Len()), names: f.Names()}
	for _, n := range m.names {
		m.owner[n] = f
	}
	return m, nil
}

func openIndex(index string) (m *Model, err error) {
	raw, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	fail := func(tensor, format string, args ...any) error {
		return &Error{Path: index, Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
	}
	members, err := objectMembers(raw)
	if err != nil {
		return nil, fail("", "index %v", err)
	}
	var weightMap []member
	m = &Model{path: index, sharded: true}
	haveMap := false
	for _, mb := range members {
		switch mb.key {
		case "weight_map":
			weightMap, err = objectMembers(mb.value)
			if err != nil {
				return nil, fail("", "weight_map is %s, want an object of tensor name to shard file", jsonKind(mb.value))
			}
			haveMap = true
		case "metadata":
			md, err := objectMembers(mb.value)
			if err != nil {
				return nil, fail("", "metadata is %s, want an object", jsonKind(mb.value))
			}
			m.indexMeta = make(map[string]json.RawMessage, len(md))
			for _, kv := range md {
				m.indexMeta[kv.key] = kv.value
			}
		}
	}
	if !haveMap {
		return nil, fail("", "missing weight_map")
	}
	if len(weightMap) == 0 {
		return nil, fail("", "weight_map is empty")
	}
	dir := filepath.Dir(index)
	want := make(map[string]string, len(weightMap)) // tensor -> shard name
	var shardOrder []string
	shardSeen := make(map[string]bool)
	for _, kv := range weightMap {
		var shard string
		if bytes.TrimSpace(kv.value)[0] != '"' || json.Unmarshal(kv.value, &shard) != nil {
			return nil, fail(kv.key, "weight_map value is %s, want a shard file name", jsonKind(kv.value))
		}
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) || filepath.Base(shard) != shard {
			return nil, fail(kv.key, "weight_map shard %q is not a plain file name in the index's directory", truncate(shard, 80))
		}
		want[kv.key] = shard
		if !shardSeen[shard] {
			shardSeen[shard] = true
			shardOrder = append(shardOrder, shard)
		}
	}
	sort.Strings(shardOrder)
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	m.owner = make(map[string]*File, len(want))
	for _, shard := range shardOrder {
		p := filepath.Join(dir, shard)
		f, err := Open(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return m, fail("", "shard %s listed in weight_map is missing", shard)
			}
			return m, err
		}
		m.files = append(m.files, f)
		for _, name := range f.h.names {
			w, listed := want[name]
			switch {
			case !listed:
				return m, fail(name, "tensor in shard %s is not listed in weight_map", shard)
			case w != shard:
				return m, fail(name, "tensor is in shard %s but weight_map puts it in %s (duplicate across shards?)", shard, w)
			}
			if prev, dup := m.owner[name]; dup {
				return m, fail(name, "tensor appears in both %s and %s", filepath.Base(prev.path), shard)
			}
			m.owner[name] = f
		}
	}
	for name, shard := range want {
		if m.owner[name] == nil {
			return m, fail(name, "weight_map puts tensor in %s, which does not contain it", shard)
		}
	}
	m.names = make([]string, 0, len(m.owner))
	for name := range m.owner {
		m.names = append(m.names, name)
	}
	sort.Strings(m.names)
	return m, nil
}

// Close closes every file of the model. Data slices are invalid afterwards.
func (m *Model) Close() error {
	var first error
	for _, f := range m.files {
		if f.release == nil {
			continue
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Path returns the path given to OpenModel.
func (m *Model) Path() string { return m.path }

// Sharded reports whether the model was opened through an index.
func (m *Model) Sharded() bool { return m.sharded }

// Files returns the open files: the shards in name order, or the single file.
func (m *Model) Files() []*File { return append([]*File(nil), m.files...) }

// Len returns the number of tensors.
func (m *Model) Len() int { return len(m.names) }

// Names returns all tensor names across shards, sorted (a new slice).
func (m *Model) Names() []string { return append([]string(nil), m.names...) }

// Info returns the description of the named tensor and whether it exists.
// Offset is relative to the file returned by [Model.File].
func (m *Model) Info(name string) (TensorInfo, bool) {
	f, ok := m.owner[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// File returns the file (shard) that holds the named tensor.
func (m *Model) File(name string) (*File, bool) {
	f, ok := m.owner[name]
	return f, ok
}

// Data returns the named tensor's raw bytes, a zero-copy view into its shard;
// see [File.Data].
func (m *Model) Data(name string) ([]byte, error) {
	f, ok := m.owner[name]
	if !ok {
		return nil, &Error{Path: m.path, Tensor: name, Msg: "no such tensor"}
	}
	return f.Data(name)
}

// Float32s decodes the named tensor into a new []float32; see [File.Float32s].
func (m *Model) Float32s(name string) ([]float32, error) { return float32s(m, m.path, name) }

// Int64s decodes the named tensor into a new []int64; see [File.Int64s].
func (m *Model) Int64s(name string) ([]int64, error) { return int64s(m, m.path, name) }

// Tensor returns the named tensor with Data aliasing its shard.
func (m *Model) Tensor(name string) (Tensor, error) { return tensorOf(m, name) }

// Tensors returns all tensors in name order, with Data aliasing the shards.
func (m *Model) Tensors() ([]Tensor, error) { return tensorsOf(m) }

// Metadata returns the __metadata__ of the files merged (for a sharded model
// the shards usually all say {"format": "pt"}; where they disagree the first
// shard in name order wins). It is nil if no file has metadata.
func (m *Model) Metadata() map[string]string {
	var md map[string]string
	for i := len(m.files) - 1; i >= 0; i-- {
		for k, v := range m.files[i].h.metadata {
			if md == nil {
				md = make(map[string]string)
			}
			md[k] = v
		}
	}
	return md
}

// IndexMetadata returns the "metadata" object of a sharded checkpoint's
// index (e.g. "total_size"), as raw JSON values; nil for a single file.
func (m *Model) IndexMetadata() map[string]json.RawMessage {
	if m.indexMeta == nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m.indexMeta))
	for k, v := range m.indexMeta {
		out[k] = append(json.RawMessage(nil), v...)
	}
	return out
}

// SaveSharded writes tensors into the model directory dir (created if
// needed) as transformers' save_pretrained does: if they fit in one shard, a
// single model.safetensors; otherwise model-0000i-of-0000N.safetensors shards
// and model.safetensors.index.json ({"metadata": {"total_parameters",
// "total_size"}, "weight_map": {...}}). Tensors are taken in name order and
// packed greedily: a shard is closed when the next tensor would take it over
// maxShardBytes, and a tensor larger than maxShardBytes gets a shard of its
// own (huggingface_hub's split_state_dict_into_shards). maxShardBytes 0 means
// [DefaultMaxShardBytes].
//
// metadata is written into every file's __metadata__; "format": "pt" is
// added if metadata has no "format" key, because transformers refuses
// safetensors checkpoints whose metadata lacks it. Stale checkpoint files from
// an earlier save into dir (other shards, or the index or single file of the
// other layout) are removed after the new files are in place. It returns the
// names of the files written, index last.
func SaveSharded(dir string, tensors []Tensor, maxShardBytes int64, metadata map[string]string) ([]string, error) {
	if maxShardBytes < 0 {
		return nil, &Error{Path: dir, Msg: fmt.Sprintf("maxShardBytes %d is negative", maxShardBytes)}
	}
	if maxShardBytes == 0 {
		maxShardBytes = DefaultMaxShardBytes
	}
	sizes, err := check(dir, tensors)
	if err != nil {
		return nil, err
	}
	md := map[string]string{"format": "pt"}
	for k, v := range metadata {
		md[k] = v
	}
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return tensors[order[a]].Name < tensors[order[b]].Name })

	var shards [][]int
	var cur []int
	var curSize, totalSize, totalParams int64
	for _, i := range order {
		totalSize += sizes[i]
		totalParams += tensors[i].NumElements()
		if sizes[i] > maxShardBytes {
			shards = append(shards, []int{i})
			continue
		}
		if curSize+sizes[i] > maxShardBytes {
			shards = append(shards, cur)
			cur, curSize = nil, 0
		}
		cur = append(cur, i)
		curSize += sizes[i]
	}
	if len(cur) > 0 || len(shards) == 0 {
		shards = append(shards, cur)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	pick := func(idx []int) []Tensor {
		out := make([]Tensor, len(idx))
		for j, i := range idx {
			out[j] = tensors[i]
		}
		return out
	}
	var written []string
	if len(shards) == 1 {
		if err := Save(filepath.Join(dir, SingleFileName), pick(shards[0]), md); err != nil {
			return nil, err
		}
		written = []string{SingleFileName}
	} else {
		weightMap := make(map[string]string, len(tensors))
		for s, idx := range shards {
			name := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, len(shards))
			if err := Save(filepath.Join(dir, name), pick(idx), md); err != nil {
				return nil, err
			}
			for _, i := range idx {
				weightMap[tensors[i].Name] = name
			}
			written = append(written, name)
		}
		index := struct {
			Metadata  map[string]int64  `json:"metadata"`
			WeightMap map[string]string `json:"weight_map"`
		}{map[string]int64{"total_parameters": totalParams, "total_size": totalSize}, weightMap}
		err := atomicWrite(filepath.Join(dir, IndexFileName), func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			return enc.Encode(index)
		})
		if err != nil {
			return nil, err
		}
		written = append(written, IndexFileName)
	}
	return written, removeStale(dir, written)
}

// removeStale deletes checkpoint files in dir not among keep.
func removeStale(dir string, keep []string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	kept := make(map[string]bool, len(keep))
	for _, k := range keep {
		kept[k] = true
	}
	for _, e := range entries {
		n := e.Name()
		if kept[n] || e.IsDir() {
			continue
		}
		if n == SingleFileName || n == IndexFileName || shardNameRE.MatchString(n) {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("safetensors: removing stale checkpoint file: %w", err)
			}
		}
	}
	return nil
}
