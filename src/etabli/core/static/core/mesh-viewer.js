// Établi — the 3D preview of a CAD mesh (STL or OBJ) with three.js from the npm registry
// (installed by `etabli assets`, mapped by the page's import map; our own code).
//
// <div data-mesh-viewer data-src="…" data-format="stl|obj" data-no-webgl="…" data-error="…">
// The element gets data-state="ready" once the mesh is drawn, "no-webgl" or "error" otherwise,
// and then shows a plain message instead of breaking the page.
import * as THREE from "three";
import { STLLoader } from "three/addons/loaders/STLLoader.js";
import { OBJLoader } from "three/addons/loaders/OBJLoader.js";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";

function say(root, state, message) {
  root.setAttribute("data-state", state);
  const status = root.querySelector("[data-viewer-status]");
  if (status) {
    status.textContent = message || "";
    status.hidden = !message;
  }
}

function webglAvailable() {
  try {
    const probe = document.createElement("canvas");
    return Boolean(window.WebGL2RenderingContext && probe.getContext("webgl2")) ||
      Boolean(window.WebGLRenderingContext && probe.getContext("webgl"));
  } catch (e) {
    return false;
  }
}

function geometryOf(format, buffer) {
  if (format === "obj") {
    const text = new TextDecoder().decode(buffer);
    const group = new OBJLoader().parse(text);
    const parts = [];
    group.traverse((child) => { if (child.isMesh) { parts.push(child.geometry); } });
    return parts;
  }
  return [new STLLoader().parse(buffer)];
}

async function start(root) {
  if (!webglAvailable()) {
    say(root, "no-webgl", root.getAttribute("data-no-webgl"));
    return;
  }
  const stage = root.querySelector("[data-viewer-stage]") || root;
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  } catch (e) {
    say(root, "no-webgl", root.getAttribute("data-no-webgl"));
    return;
  }
  let buffer;
  try {
    const response = await fetch(root.getAttribute("data-src"), { credentials: "same-origin" });
    if (!response.ok) { throw new Error(String(response.status)); }
    buffer = await response.arrayBuffer();
  } catch (e) {
    renderer.dispose();
    say(root, "error", root.getAttribute("data-error"));
    return;
  }
  let geometries;
  try {
    geometries = geometryOf(root.getAttribute("data-format"), buffer);
  } catch (e) {
    geometries = [];
  }
  if (!geometries.length) {
    renderer.dispose();
    say(root, "error", root.getAttribute("data-error"));
    return;
  }

  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xf4f1ea);
  const colour = root.getAttribute("data-colour") || "#d4af37";
  const material = new THREE.MeshStandardMaterial({ color: new THREE.Color(colour),
    metalness: 0.6, roughness: 0.35, side: THREE.DoubleSide });
  const model = new THREE.Group();
  for (const geometry of geometries) {
    if (!geometry.getAttribute("normal")) { geometry.computeVertexNormals(); }
    model.add(new THREE.Mesh(geometry, material));
  }
  // Centre the model at the origin; its size decides the camera's distance.
  const box = new THREE.Box3().setFromObject(model);
  const centre = box.getCenter(new THREE.Vector3());
  const size = box.getSize(new THREE.Vector3());
  model.position.sub(centre);
  scene.add(model);
  const radius = Math.max(size.length() / 2, 0.001);

  scene.add(new THREE.HemisphereLight(0xffffff, 0x8a7f6a, 1.6));
  const key = new THREE.DirectionalLight(0xffffff, 2.2);
  key.position.set(1, 1.5, 2);
  scene.add(key);
  const rim = new THREE.DirectionalLight(0xffffff, 0.8);
  rim.position.set(-2, -1, -1.5);
  scene.add(rim);

  const camera = new THREE.PerspectiveCamera(35, 1, radius / 100, radius * 100);
  camera.position.set(radius * 1.6, radius * 1.3, radius * 2.4);
  camera.lookAt(0, 0, 0);

  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  const canvas = renderer.domElement;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", root.getAttribute("data-label") || "");
  canvas.setAttribute("tabindex", "0");
  stage.appendChild(canvas);

  const controls = new OrbitControls(camera, canvas);
  controls.enableDamping = false;
  controls.minDistance = radius / 10;
  controls.maxDistance = radius * 20;

  function draw() { renderer.render(scene, camera); }

  function resize() {
    const width = Math.max(stage.clientWidth, 1);
    const height = Math.max(Math.round(Math.min(width * 0.75, 480)), 1);
    renderer.setSize(width, height);
    camera.aspect = width / height;
    camera.updateProjectionMatrix();
    draw();
  }

  controls.addEventListener("change", draw);
  if (window.ResizeObserver) {
    new ResizeObserver(resize).observe(stage);
  } else {
    window.addEventListener("resize", resize);
  }
  canvas.addEventListener("webglcontextlost", (event) => {
    event.preventDefault();
    say(root, "no-webgl", root.getAttribute("data-no-webgl"));
  });
  resize();
  say(root, "ready", "");
}

for (const root of document.querySelectorAll("[data-mesh-viewer]")) {
  start(root).catch(() => say(root, "error", root.getAttribute("data-error")));
}
