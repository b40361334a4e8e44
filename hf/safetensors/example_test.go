package safetensors_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/blockllm/blockllm-go/hf/safetensors"
)

// Write a small checkpoint, then read it back through the model view that
// serves single files and sharded checkpoints alike.
func Example() {
	dir, err := os.MkdirTemp("", "st-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, _ := safetensors.EncodeFloat32(nil, safetensors.BF16, []float32{1, 2, 3, 4, 5, 6})
	ids, _ := safetensors.EncodeInt64(nil, safetensors.I64, []int64{7, 8})
	tensors := []safetensors.Tensor{
		{Name: "model.embed_tokens.weight", DType: safetensors.BF16, Shape: []int64{3, 2}, Data: w},
		{Name: "input_ids", DType: safetensors.I64, Shape: []int64{2}, Data: ids},
	}
	// A 16-byte shard limit forces two shards and an index.
	files, err := safetensors.SaveSharded(dir, tensors, 16, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(files)

	m, err := safetensors.OpenModel(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	for _, name := range m.Names() {
		info, _ := m.Info(name)
		f, _ := m.File(name)
		fmt.Println(name, info.DType, info.Shape, filepath.Base(f.Path()))
	}
	x, _ := m.Float32s("model.embed_tokens.weight")
	fmt.Println(x)
	// Output:
	// [model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json]
	// input_ids I64 [2] model-00001-of-00002.safetensors
	// model.embed_tokens.weight BF16 [3 2] model-00002-of-00002.safetensors
	// [1 2 3 4 5 6]
}
