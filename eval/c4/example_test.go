package c4_test

import (
	"fmt"
	"testing/fstest"

	"github.com/blockllm/blockllm-go/eval/c4"
)

func ExamplePacker() {
	fsys := fstest.MapFS{
		"c4-train.00000-of-00001.json": {Data: []byte(
			`{"text": "ab", "url": "https://example.com/1"}` + "\n" +
				`{"text": "cde", "url": "https://example.com/2"}` + "\n")},
	}
	r, err := c4.OpenFS(fsys, []string{"c4-train.*.json"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	// A toy tokenizer: one token per byte, 'a' = 1.
	tok := func(s string) []int {
		var ids []int
		for _, b := range []byte(s) {
			ids = append(ids, int(b-'a'+1))
		}
		return ids
	}
	// nanoGPT-style blocks of T+1 = 4 tokens sharing one token, with EOS 0
	// after each document: stream 1 2 0 3 4 5 0.
	p, err := c4.NewPacker(r, tok, c4.PackOptions{BlockLen: 4, Overlap: 1, EOS: []int{0}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		b, err := p.Next()
		if err != nil {
			break
		}
		fmt.Println("inputs", b[:3], "targets", b[1:])
	}
	st := p.State()
	fmt.Printf("resume at file %d doc %d offset %d after %d blocks\n", st.Doc.File, st.Doc.Doc, st.Offset, st.Blocks)
	// Output:
	// inputs [1 2 0] targets [2 0 3]
	// inputs [3 4 5] targets [4 5 0]
	// resume at file 0 doc 1 offset 3 after 2 blocks
}
