// Command trivial is the floor for an Ansible binary module's per-task cost: run as
// `trivial ARGSFILE`, as Ansible runs rundock's module, it reads the args file and prints
// {"changed": false}. scripts/bench.sh (module_cost) times a play of its tasks beside the
// same count of rundock module tasks, so the difference is what rundock's module costs
// above any Go binary module.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	out := map[string]any{"changed": false}
	if len(os.Args) != 2 {
		out = map[string]any{"failed": true, "msg": "usage: trivial ARGSFILE"}
	} else if b, err := os.ReadFile(os.Args[1]); err != nil {
		out = map[string]any{"failed": true, "msg": err.Error()}
	} else {
		var args map[string]any
		if err := json.Unmarshal(b, &args); err != nil {
			out = map[string]any{"failed": true, "msg": "cannot parse the module arguments: " + err.Error()}
		}
	}
	b, _ := json.Marshal(out)
	fmt.Printf("%s\n", b)
	if out["failed"] == true {
		os.Exit(1)
	}
}
