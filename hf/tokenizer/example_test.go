package tokenizer_test

import (
	"fmt"
	"path/filepath"

	"github.com/blockllm/blockllm-go/hf/tokenizer"
)

func ExampleLoad() {
	tk, err := tokenizer.Load(filepath.Join("..", "..", "testdata", "hf", "llama-tiny-tok"))
	if err != nil {
		fmt.Println(err)
		return
	}
	enc, err := tk.Encode("Hello world", true)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(enc.IDs)
	fmt.Println(enc.Tokens)
	text, _ := tk.Decode(enc.IDs, true)
	fmt.Printf("%q BOS=%d EOS=%d\n", text, tk.BOS(), tk.EOS())
	// Output:
	// [1 357 459 916 688]
	// [<s> ▁H ell o ▁world]
	// "Hello world" BOS=1 EOS=2
}

func ExampleTokenizer_EncodeBatch() {
	tk, err := tokenizer.Load(filepath.Join("..", "..", "testdata", "hf", "roberta-tiny-tok"),
		tokenizer.WithTruncation(&tokenizer.Truncation{MaxLength: 6}),
		tokenizer.WithPadding(&tokenizer.Padding{PadID: 1, PadToken: "<pad>"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	encs, err := tk.EncodeBatch([]string{"Hi", "The quick brown fox jumps over the lazy dog."}, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range encs {
		fmt.Println(e.IDs, e.AttentionMask)
	}
	// Output:
	// [0 44 77 2 1 1] [1 1 1 1 0 0]
	// [0 381 597 593 729 2] [1 1 1 1 1 1]
}
