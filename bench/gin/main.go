// Baseline for bench/wrk/run.sh: the same two routes as bench/echo_server.cpp,
// in Gin (Debian's golang-github-gin-gonic-gin-dev), with gin.New() plus
// Recovery — the closest match to errand's middleware stack without logging.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/gin-gonic/gin"
)

type echo struct {
	Message string `json:"message" binding:"required"`
	N       int    `json:"n" binding:"required"`
}

func main() {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "port %d\n", ln.Addr().(*net.TCPAddr).Port)
	_ = http.Serve(ln, r)
}
