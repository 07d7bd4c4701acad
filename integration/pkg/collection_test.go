package pkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/testenv"
)

// TestCollection builds the collection (packaging/build-collection.sh, what make collection
// runs), checks that it holds an amd64 and an arm64 build of the module, installs it with
// ansible-galaxy collection install into a temp collections path, and runs a playbook that
// uses rundock.rundock.rundock: check mode (changed, nothing written), a real run (changed),
// again (not changed), once without facts (uname) and once with them.
func TestCollection(t *testing.T) {
	testenv.Need(t, "ansible-galaxy", "ansible-playbook", "ansible-doc", "python3")
	root := t.TempDir()

	var tarball string
	took := timed(func() {
		tarball = lastLine(run(t, []string{"OUT_DIR=" + filepath.Join(root, "out")}, "bash", "packaging/build-collection.sh"))
	})
	st, err := os.Stat(tarball)
	if err != nil {
		t.Fatalf("build-collection.sh printed %q: %v", tarball, err)
	}
	t.Logf("built %s: %.1f MB in %s", filepath.Base(tarball), float64(st.Size())/1e6, took)

	// One build per architecture, each for the CPU its name says.
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	files := tarFiles(t, tarball)
	for arch, want := range machines {
		name := "plugins/modules/rundock_linux_" + arch
		data, ok := files[name]
		if !ok {
			t.Errorf("the collection lacks %s", name)
			continue
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s is not an ELF binary: %v", name, err)
			continue
		}
		if f.Machine != want || f.FileHeader.OSABI != elf.ELFOSABI_NONE && f.FileHeader.OSABI != elf.ELFOSABI_LINUX {
			t.Errorf("%s is built for %v, want %v", name, f.Machine, want)
		}
		if _, ok := files[name+".yml"]; !ok {
			t.Errorf("the collection lacks the documentation %s.yml", name)
		}
	}
	for _, name := range []string{"plugins/action/rundock.py", "plugins/modules/rundock.py", "meta/runtime.yml", "MANIFEST.json"} {
		if _, ok := files[name]; !ok {
			t.Errorf("the collection lacks %s", name)
		}
	}

	// Install, as an operator does, into a collections path of its own.
	colls := filepath.Join(root, "collections")
	env := append(ansibleEnv(root), "ANSIBLE_COLLECTIONS_PATH="+colls)
	run(t, env, "ansible-galaxy", "collection", "install", tarball, "-p", colls)
	doc := run(t, env, "ansible-doc", "rundock.rundock.rundock")
	if !strings.Contains(doc, "bin_dir") || !strings.Contains(doc, "rundock_module") && !strings.Contains(doc, "architecture") {
		t.Errorf("ansible-doc rundock.rundock.rundock:\n%s", doc)
	}

	sv := filepath.Join(root, "sv")
	results := filepath.Join(root, "results.json")
	task := `rundock.rundock.rundock: {state: present, name: colltest, image: busybox, announce: 8086,
        sv_dir: "` + sv + `", service_dir: "` + filepath.Join(root, "service") + `", log_dir: "` + filepath.Join(root, "log") + `"}`
	playbook := `- hosts: localhost
  connection: local
  gather_facts: false
  vars: {ansible_system: Linux, ansible_architecture: riscv64}
  tasks:
    - name: a target the collection has no build for
      ` + task + `
      register: riscv
      ignore_errors: true
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: check mode on an empty sv_dir
      ` + task + `
      check_mode: true
      register: check
    - name: check mode wrote nothing
      ansible.builtin.stat: {path: "` + sv + `/docker-colltest"}
      register: after_check
    - name: real run
      ` + task + `
      register: first
    - name: again
      ` + task + `
      register: second
- hosts: localhost
  connection: local
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: again, the architecture from the facts
      ` + task + `
      register: facts_run
    - ansible.builtin.copy:
        dest: "` + results + `"
        content: "{{ {'check': hostvars.localhost.check, 'after_check': hostvars.localhost.after_check.stat.exists,
          'first': hostvars.localhost.first, 'second': hostvars.localhost.second, 'facts_run': facts_run, 'riscv': hostvars.localhost.riscv} | to_json }}"
`
	pb := filepath.Join(root, "playbook.yml")
	if err := os.WriteFile(pb, []byte(playbook), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, env, "ansible-playbook", "-i", "localhost,", pb)
	data, err := os.ReadFile(results)
	if err != nil {
		t.Fatalf("the playbook wrote no results: %v\n%s", err, out)
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("results: %v\n%s", err, data)
	}
	type taskResult struct {
		Changed bool   `json:"changed"`
		Failed  bool   `json:"failed"`
		Module  string `json:"rundock_module"`
	}
	want := map[string]bool{"check": true, "first": true, "second": false, "facts_run": false}
	for name, changed := range want {
		var tr taskResult
		if err := json.Unmarshal(r[name], &tr); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tr.Changed != changed || tr.Failed {
			t.Errorf("task %s: changed=%v failed=%v, want changed=%v: %s", name, tr.Changed, tr.Failed, changed, r[name])
		}
		if tr.Module != "rundock.rundock.rundock_linux_amd64" && tr.Module != "rundock.rundock.rundock_linux_arm64" {
			t.Errorf("task %s ran %q, want the build for this machine", name, tr.Module)
		}
	}
	var riscv struct {
		Failed bool   `json:"failed"`
		Msg    string `json:"msg"`
	}
	json.Unmarshal(r["riscv"], &riscv)
	if !riscv.Failed || !strings.Contains(riscv.Msg, "linux/riscv64") || !strings.Contains(riscv.Msg, "COLLECTION_ARCHES") {
		t.Errorf("a riscv64 target: %s, want a failure naming linux/riscv64 and how to build for it", r["riscv"])
	}
	if string(r["after_check"]) != "false" {
		t.Errorf("check mode wrote %s/docker-colltest", sv)
	}
	fileIs(t, filepath.Join(sv, "docker-colltest", "run"), "exec docker run --rm --name 'colltest'")
}

// tarFiles reads a .tar.gz into memory: name → contents, for regular files.
func tarFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = data
	}
}
