// Établi — small behaviours on top of server-rendered pages (our own code).
(function () {
  "use strict";

  // A button or form with data-confirm asks before it submits.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute("data-confirm") ||
      (event.submitter && event.submitter.getAttribute("data-confirm"));
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  }, true);

  // Job bag scanning with the phone camera: BarcodeDetector where the browser has it, jsQR
  // (from the npm registry) otherwise. A decoded job bag URL or serial opens the piece.
  function startScanner(root) {
    var video = root.querySelector("video");
    var status = root.querySelector("[data-scan-status]");
    var target = root.getAttribute("data-scan-target");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      status.textContent = root.getAttribute("data-no-camera");
      return;
    }
    var canvas = document.createElement("canvas");
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    var detector = ("BarcodeDetector" in window) ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
    var done = false;

    function found(text) {
      if (done || !text) { return; }
      done = true;
      status.textContent = text;
      var serial = text.trim();
      var match = serial.match(/\/p\/([^/?#]+)/);
      if (match) { serial = decodeURIComponent(match[1]); }
      window.location.href = target.replace("__SERIAL__", encodeURIComponent(serial));
    }

    function tick() {
      if (done) { return; }
      if (video.readyState === video.HAVE_ENOUGH_DATA) {
        if (detector) {
          detector.detect(video).then(function (codes) {
            if (codes.length) { found(codes[0].rawValue); }
          }).catch(function () { detector = null; });
        } else if (window.jsQR) {
          canvas.width = video.videoWidth; canvas.height = video.videoHeight;
          ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
          var image = ctx.getImageData(0, 0, canvas.width, canvas.height);
          var code = window.jsQR(image.data, image.width, image.height);
          if (code) { found(code.data); }
        }
      }
      window.requestAnimationFrame(tick);
    }

    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream;
      video.setAttribute("playsinline", "");
      video.play();
      status.textContent = root.getAttribute("data-scanning");
      window.requestAnimationFrame(tick);
    }).catch(function () {
      status.textContent = root.getAttribute("data-no-camera");
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-start-scan]");
    if (button) {
      var root = document.getElementById(button.getAttribute("data-start-scan"));
      root.hidden = false;
      button.hidden = true;
      startScanner(root);
    }
  });
})();
