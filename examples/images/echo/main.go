// Command echo is the demo and test service: an HTTP server that answers with the
// instance it runs as, so a client can see which container served it.
//
//	GET /        "INSTANCE HOSTNAME\n"
//	GET /health  200, or 503 when the file named by $UNHEALTHY_FILE exists
//
// Environment: PORT (default 8080), INSTANCE (default the host name), EXIT_CODE (when
// set, exit with it at once: a crash-looping container). `echo -check` probes /health on
// PORT and exits 0 or 1, for health checks in an image with no other tools.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if len(os.Args) > 1 && os.Args[1] == "-check" {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://127.0.0.1:" + port + "/health")
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if code := os.Getenv("EXIT_CODE"); code != "" {
		n, _ := strconv.Atoi(code)
		fmt.Println("exiting with", n)
		os.Exit(n)
	}
	host, _ := os.Hostname()
	instance := os.Getenv("INSTANCE")
	if instance == "" {
		instance = host
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", instance, host)
	})
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if f := os.Getenv("UNHEALTHY_FILE"); f != "" {
			if _, err := os.Stat(f); err == nil {
				http.Error(w, "unhealthy", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	log.Printf("echo %s listening on :%s", instance, port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
