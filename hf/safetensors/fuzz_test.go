package safetensors

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// FuzzParseHeader feeds arbitrary bytes to the parser. Whatever it accepts
// must be self-consistent: every tensor's bytes lie inside the buffer, spans
// do not overlap, sizes match shapes, and writing the tensors back and
// parsing that gives the same tensors. Nothing may panic.
//
//	go test ./hf/safetensors -run XXX -fuzz FuzzParseHeader -fuzztime 70s
func FuzzParseHeader(f *testing.F) {
	f.Add(rawFile(`{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`, make([]byte, 16)))
	f.Add(rawFile(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}}  `, make([]byte, 14)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 16)))
	f.Add(rawFile(`{"s":{"dtype":"BOOL","shape":[],"data_offsets":[0,1]},"z":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}}`, []byte{1}))
	f.Add(rawFile(`{}`, nil))
	f.Add([]byte("PK\x03\x04"))
	if b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "hf", "roberta-tiny-sst2", "golden.safetensors")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := FromBytes("fuzz", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		names := file.Names()
		if !sort.StringsAreSorted(names) {
			t.Fatal("names not sorted")
		}
		type span struct{ a, b int64 }
		var spans []span
		ts := make([]Tensor, 0, len(names))
		for _, n := range names {
			info, ok := file.Info(n)
			if !ok {
				t.Fatalf("listed tensor %q has no info", n)
			}
			d, err := file.Data(n)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(d)) != info.Size || info.Size != info.NumElements()*int64(info.DType.Size()) {
				t.Fatalf("tensor %q: size mismatch", n)
			}
			if info.Offset < 8+file.HeaderSize() || info.Offset+info.Size > int64(len(data)) {
				t.Fatalf("tensor %q: span outside the data section", n)
			}
			if info.Size > 0 {
				spans = append(spans, span{info.Offset, info.Offset + info.Size})
			}
			ts = append(ts, Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: d})
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].a < spans[j].a })
		for i := 1; i < len(spans); i++ {
			if spans[i].a < spans[i-1].b {
				t.Fatal("overlapping spans accepted")
			}
		}
		out, err := Marshal(ts, file.Metadata())
		if err != nil {
			t.Fatalf("rewriting an accepted file: %v", err)
		}
		again, err := FromBytes("rewritten", out)
		if err != nil {
			t.Fatalf("re-reading a rewritten file: %v", err)
		}
		if again.Len() != file.Len() {
			t.Fatal("tensor count changed in round trip")
		}
		for _, n := range names {
			a, _ := file.Data(n)
			b, _ := again.Data(n)
			if string(a) != string(b) {
				t.Fatalf("tensor %q changed in round trip", n)
			}
		}
	})
}
