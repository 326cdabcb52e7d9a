package config

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// Masked replaces the value of a secret key in Print's output.
const Masked = "REDACTED"

// PrintedKey is one key in Print's JSON output.
type PrintedKey struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source Source `json:"source"`
	Env    string `json:"env"`
	Flag   string `json:"flag"`
}

// Printed is Print's JSON output.
type Printed struct {
	ConfigFile string       `json:"config_file"`
	Keys       []PrintedKey `json:"keys"`
}

// Print writes every key of cfg with its effective value and its source
// (default, file, env or flag): a table, or JSON (the Printed shape) when
// asJSON is set. Secret keys are masked. src may be nil (all defaults).
func Print(w io.Writer, cfg *Config, src *Sources, asJSON bool) error {
	return printKeys(w, keys, cfg, src, asJSON)
}

func printKeys(w io.Writer, table []key, cfg *Config, src *Sources, asJSON bool) error {
	if asJSON {
		out := Printed{Keys: make([]PrintedKey, 0, len(table))}
		if src != nil {
			out.ConfigFile = src.File
		}
		for i := range table {
			k := &table[i]
			v := k.value(cfg)
			if k.secret && k.format(cfg) != "" {
				v = Masked
			}
			out.Keys = append(out.Keys, PrintedKey{Key: k.name, Value: v, Source: src.Of(k.name), Env: k.envName(), Flag: "--" + k.flagName()})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	file := "none"
	if src != nil && src.File != "" {
		file = src.File
	}
	if _, err := fmt.Fprintf(w, "# config file: %s\n", file); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
	for i := range table {
		k := &table[i]
		v := k.format(cfg)
		switch {
		case k.secret && v != "":
			v = Masked
		case v == "":
			v = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.name, v, src.Of(k.name))
	}
	return tw.Flush()
}
