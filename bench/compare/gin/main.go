// The Gin peer of bench/compare/run, written for the comparison (Debian's
// golang-github-gin-gonic-gin-dev, built offline with GO111MODULE=off):
//   GET  /healthz     static JSON
//   POST /echo        bind a struct, reply with it
//   POST /async-task  the tutorial pattern: hand the task to a pool of
//                     goroutine workers through a bounded channel (503 when
//                     full); nothing is stored, a crash loses every queued task
// gin.New() + Recovery(): the closest match to errand's stack without logging.
// Prints "port N" on stderr; GET /stats reports tasks done.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/gin-gonic/gin"
)

type echo struct {
	Message string `json:"message" binding:"required"`
	N       int    `json:"n" binding:"required"`
}

type task struct {
	Type    string         `json:"type" binding:"required"`
	Payload map[string]any `json:"payload"`
}

func main() {
	workers, _ := strconv.Atoi(os.Getenv("WORKERS"))
	if workers <= 0 {
		workers = 4
	}
	jobs := make(chan task, 10000)
	var done atomic.Int64
	for i := 0; i < workers; i++ {
		go func() {
			for range jobs {
				done.Add(1) // a no-op task
			}
		}()
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.POST("/echo", func(c *gin.Context) {
		var in echo
		if err := c.ShouldBindJSON(&in); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": gin.H{"code": "invalid_field", "message": err.Error()}})
			return
		}
		c.JSON(http.StatusOK, in)
	})
	r.POST("/async-task", func(c *gin.Context) {
		var in task
		if err := c.ShouldBindJSON(&in); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": gin.H{"code": "invalid_field", "message": err.Error()}})
			return
		}
		select {
		case jobs <- in:
			c.JSON(http.StatusAccepted, gin.H{"message": "Task started"})
		default:
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": gin.H{"code": "queue_full", "message": "try later"}})
		}
	})
	r.GET("/stats", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"done": done.Load()}) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "port %d\n", ln.Addr().(*net.TCPAddr).Port)
	_ = http.Serve(ln, r)
}
