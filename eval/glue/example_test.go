package glue_test

import (
	"fmt"

	"github.com/blockllm/blockllm-go/eval/glue"
)

func ExampleLoad() {
	// testdata/tsv holds CoLA/, SST-2/, ... as in the GLUE download.
	ds, err := glue.Load("testdata/tsv", "MNLI", "validation_mismatched")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ds.Task.Name, ds.Split, ds.Layout, ds.Len(), ds.Task.LabelNames)
	e := ds.Examples[1]
	fmt.Printf("%q / %q -> %s\n", e.TextA, e.TextB, ds.Task.LabelNames[e.Class()])

	// Score predictions (class ids, one per example).
	s, err := ds.Score([]float64{2, 0})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	// Output:
	// mnli validation_mismatched glue-tsv 2 [entailment neutral contradiction]
	// "The answer is \"yes\"." / "The answer is \"no\"." -> contradiction
	// mnli_mismatched 50.00
}
