package instruct

import "github.com/blockllm/blockllm-go/eval/c4"

// InValidation reports whether r belongs to the validation split of the
// given fraction and seed. The decision hashes the record's content (layout
// and fields, not its file or line) as eval/c4's InValidation does for
// documents, so it is stable across file order, sharding and reruns, and
// duplicate records land on the same side.
func InValidation(r *Record, fraction float64, seed uint64) bool {
	return c4.InValidation(r.key(), fraction, seed)
}

// Split separates recs into the training and validation records for the
// given fraction and seed (see InValidation), keeping their order.
func Split(recs []Record, fraction float64, seed uint64) (train, validation []Record) {
	for _, r := range recs {
		if InValidation(&r, fraction, seed) {
			validation = append(validation, r)
		} else {
			train = append(train, r)
		}
	}
	return train, validation
}
