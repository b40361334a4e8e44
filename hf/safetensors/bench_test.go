package safetensors

import (
	"math/rand"
	"path/filepath"
	"testing"
)

// BenchmarkOpenModelSharded opens (mmap + full header validation) the
// 4-shard fixture and closes it.
func BenchmarkOpenModelSharded(b *testing.B) {
	dir := filepath.Join(fixtureRoot(b), "llama-tiny-bf16-sharded")
	for i := 0; i < b.N; i++ {
		m, err := OpenModel(dir)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

// BenchmarkParseHeader7B validates a synthetic header shaped like a Llama-7B
// checkpoint (291 tensors).
func BenchmarkParseHeader7B(b *testing.B) {
	var ts []Tensor
	add := func(name string, shape ...int64) {
		ts = append(ts, Tensor{Name: name, DType: BF16, Shape: shape})
	}
	add("model.embed_tokens.weight", 32000, 4096)
	add("lm_head.weight", 32000, 4096)
	add("model.norm.weight", 4096)
	for l := 0; l < 32; l++ {
		p := "model.layers." + itoa(l) + "."
		for _, n := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"} {
			add(p+n+".weight", 4096, 4096)
		}
		add(p+"mlp.gate_proj.weight", 11008, 4096)
		add(p+"mlp.up_proj.weight", 11008, 4096)
		add(p+"mlp.down_proj.weight", 4096, 11008)
		add(p+"input_layernorm.weight", 4096)
		add(p+"post_attention_layernorm.weight", 4096)
	}
	sizes := make([]int64, len(ts))
	var total int64
	for i := range ts {
		sizes[i], _ = ts[i].byteSize()
		total += sizes[i]
	}
	_, hdr := layout(ts, sizes, map[string]string{"format": "pt"})
	// Parse the header the way parseHeader does, checking spans against the
	// computed data length instead of a 13 GB buffer.
	b.ReportMetric(float64(len(ts)), "tensors")
	b.SetBytes(int64(len(hdr)))
	for i := 0; i < b.N; i++ {
		members, err := objectMembers(hdr[8:])
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range members {
			if m.key == metadataKey {
				continue
			}
			if _, _, end, err := parseTensorInfo(m.key, m.value); err != nil || end > total {
				b.Fatal(err)
			}
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func randFloats(n int) []float32 {
	r := rand.New(rand.NewSource(1))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func BenchmarkEncodeBF16(b *testing.B) {
	x := randFloats(1 << 20)
	dst := make([]byte, 2<<20)
	b.SetBytes(4 << 20)
	for i := 0; i < b.N; i++ {
		EncodeFloat32(dst, BF16, x)
	}
}

func BenchmarkEncodeF16(b *testing.B) {
	x := randFloats(1 << 20)
	dst := make([]byte, 2<<20)
	b.SetBytes(4 << 20)
	for i := 0; i < b.N; i++ {
		EncodeFloat32(dst, F16, x)
	}
}

func BenchmarkDecodeBF16(b *testing.B) {
	src, _ := EncodeFloat32(nil, BF16, randFloats(1<<20))
	dst := make([]float32, 1<<20)
	b.SetBytes(4 << 20)
	for i := 0; i < b.N; i++ {
		DecodeFloat32(dst, BF16, src)
	}
}

func BenchmarkDecodeF16(b *testing.B) {
	src, _ := EncodeFloat32(nil, F16, randFloats(1<<20))
	dst := make([]float32, 1<<20)
	b.SetBytes(4 << 20)
	for i := 0; i < b.N; i++ {
		DecodeFloat32(dst, F16, src)
	}
}

// BenchmarkSave writes a 64 MiB single-tensor file (temp file, fsync,
// rename).
func BenchmarkSave(b *testing.B) {
	data := make([]byte, 64<<20)
	ts := []Tensor{{Name: "w", DType: F32, Shape: []int64{16 << 20}, Data: data}}
	p := filepath.Join(b.TempDir(), "b.safetensors")
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if err := Save(p, ts, nil); err != nil {
			b.Fatal(err)
		}
	}
}
