package config

import (
	"bytes"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and a
// config it accepts must survive Marshal and Parse unchanged.
//
//	go test ./hf/config -run XXX -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	f.Add([]byte(llama31))
	f.Add([]byte(galore60m))
	f.Add([]byte(robertaBase))
	f.Add([]byte(`{"model_type":"roberta","vocab_size":10,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,"id2label":{"0":"a"}}`))
	f.Add([]byte(`{"model_type":"llama","vocab_size":10,"hidden_size":4,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_parameters":{"rope_type":"linear","factor":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("marshal of an accepted config: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of a marshalled config: %v\n%s", err, out)
		}
		out2, err := c2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config:\n%s\n%s", out, out2)
		}
	})
}
