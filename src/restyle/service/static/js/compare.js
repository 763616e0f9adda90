// The before/after slider: a range input laid over both images (keyboard and touch work as for
// any slider); its value moves the clip edge of the "before" photo.

export function setupCompare(container, slider) {
  const update = () => container.style.setProperty("--pos", `${slider.value}%`);
  slider.addEventListener("input", update);
  update();
}
