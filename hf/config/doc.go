// Package config reads, validates and writes Hugging Face config.json files
// for the model families this project trains: Llama (causal LM) and RoBERTa
// (sequence classification and regression).
//
// Both transformers v4 and v5 spellings are accepted: rope_theta at the top
// level or in rope_parameters, rope_scaling or rope_parameters for the RoPE
// type (default, linear, llama3), torch_dtype or dtype, and GaLore-style
// max_sequence_length for max_position_embeddings. Configs are written in the
// v5 style (dtype, rope_parameters) with sorted keys and Python's number
// formatting, as transformers' save_pretrained writes them. Keys this package
// does not model are kept in Extra and written back unchanged.
//
// Every error is prefixed with "config:" and names the offending key.
package config
