package config_test

import (
	"fmt"
	"log"

	"github.com/blockllm/blockllm-go/hf/config"
)

func ExampleLlamaPreset() {
	c, err := config.LlamaPreset("llama-60m")
	if err != nil {
		log.Fatal(err)
	}
	inv, err := c.InvFreq()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.HiddenSize, c.NumHiddenLayers, c.HeadDim(), c.KVHeads(), len(inv), inv[0], inv[1])
	// Output: 512 8 64 8 32 1 0.7498942093324559
}

func ExampleParseRoberta() {
	c, err := config.ParseRoberta([]byte(`{
		"model_type": "roberta", "vocab_size": 50265, "hidden_size": 768,
		"num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
		"max_position_embeddings": 514, "id2label": {"0": "score"}}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.NumLabels(), c.IsRegression(), c.PadTokenID)
	// Output: 1 true 1
}
