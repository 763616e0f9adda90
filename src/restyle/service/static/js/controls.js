// The option controls' parts: a schema's kind and limits, the label with its "?" help, and the
// two number controls (a slider with its value beside it; a stepper with − and + and its range),
// used by options.js for the hand-made controls of index.html and the generic ones alike.

// Friendly names of preserve_color's values; any other value is shown as it is.
const CHOICE_LABELS = {
  none: "Off",
  luminance: "Luminance",
  histogram: "Histogram",
  mean_cov: "Mean and covariance",
};

export function choiceLabel(value) {
  return CHOICE_LABELS[value] ?? String(value);
}

// A property's schema without its "or null" branch, with the title, description and default
// that sit beside the anyOf: {type, minimum, maximum, enum, title, description, default,
// nullable}.
export function plainSchema(schema) {
  const branch = schema.anyOf?.find((s) => s.type !== "null") ?? schema;
  return {
    ...branch,
    title: schema.title ?? branch.title,
    description: schema.description ?? branch.description,
    default: "default" in schema ? schema.default : (branch.default ?? null),
    nullable: Boolean(schema.anyOf?.some((s) => s.type === "null")),
  };
}

export function kindOf(schema) {
  if (Array.isArray(schema.enum)) return "enum";
  if (["boolean", "integer", "number"].includes(schema.type)) return schema.type;
  return "text";
}

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

// A slider suits a number whose whole range a thumb can cover: a fraction, a small count (at
// most SLIDER_STOPS stops). Sizes, step counts, seeds and weights get a stepper.
const SLIDER_STOPS = 100;

export function isSlider(schema) {
  if (!isNumber(schema.minimum) || !isNumber(schema.maximum)) return false;
  const span = schema.maximum - schema.minimum;
  return schema.type === "integer" ? span <= SLIDER_STOPS : span <= SLIDER_STOPS / 2;
}

// A slider's step: the coarsest round number (5, 2 or 1 × 10^k) that gives at least fifteen
// stops and has the range's ends and the default on a stop (a slider snaps its value to one).
function sliderStep(schema) {
  if (schema.type === "integer") return 1;
  const { minimum: low, maximum: high } = schema;
  const onStop = (value, step) => {
    const stops = (value - low) / step;
    return Math.abs(stops - Math.round(stops)) < 1e-6;
  };
  const top = Math.ceil(Math.log10(high - low));
  for (let exponent = top; exponent > top - 12; exponent -= 1) {
    for (const factor of [5, 2, 1]) {
      const step = Number((factor * 10 ** exponent).toPrecision(1));
      if ((high - low) / step < 15) continue;
      if (onStop(high, step) && (!isNumber(schema.default) || onStop(schema.default, step))) {
        return step;
      }
    }
  }
  return "any";
}

function decimalsOf(step) {
  if (step === "any") return 3;
  const text = String(step);
  return text.includes(".") ? text.split(".")[1].length : 0;
}

const NUMBER_FORMAT = new Intl.NumberFormat("en", { maximumFractionDigits: 6 });
const LARGE_FORMAT = new Intl.NumberFormat("en", {
  notation: "compact",
  compactDisplay: "long",
  maximumFractionDigits: 1,
}); // "2.1 billion": the exact limit is in the field's max

function formatLimit(value) {
  return Math.abs(value) >= 1e6 ? LARGE_FORMAT.format(value) : NUMBER_FORMAT.format(value);
}

// "16 to 4096", "from 0", "up to 8": the limits a stepper shows beside it.
function rangeText(schema) {
  const [low, high] = [schema.minimum, schema.maximum].map((v) =>
    isNumber(v) ? formatLimit(v) : null,
  );
  if (low !== null && high !== null) return `${low} to ${high}`;
  if (low !== null) return `from ${low}`;
  if (high !== null) return `up to ${high}`;
  return "";
}

function setLimits(element, schema) {
  for (const [attribute, key] of [["min", "minimum"], ["max", "maximum"]]) {
    if (isNumber(schema[key])) element.setAttribute(attribute, String(schema[key]));
    else element.removeAttribute(attribute);
  }
}

// "Edited": the user set a value; an engine change then keeps it instead of the default.
export function trackEdits(element, isSet = () => true) {
  const mark = () => {
    element.dataset.edited = String(isSet());
  };
  element.addEventListener("input", mark);
  element.addEventListener("change", mark);
}

export const edited = (element) => element.dataset.edited === "true";

export function defaultPlaceholder(schema) {
  return schema.default === null || schema.default === undefined
    ? "optional"
    : `default ${schema.default}`;
}

export function fieldOf(element) {
  return element.closest(".field");
}

function button(text, className, ariaLabel) {
  const made = document.createElement("button");
  made.type = "button";
  made.className = className;
  made.textContent = text;
  if (ariaLabel) made.setAttribute("aria-label", ariaLabel);
  return made;
}

// Label and help ------------------------------------------------------------------------------

// The label of `element`'s field gets a "?" button that shows or hides the option's help (a
// paragraph under the control). The control is described by the help (and the range note of a
// stepper), read by screen readers whether the paragraph is shown or not.
export function labelled(element, name) {
  const field = fieldOf(element);
  const label = field.querySelector(`label[for="${element.id}"]`);
  label.id ||= `${element.id}-label`;
  const help = document.createElement("p");
  help.className = "help";
  help.id = `${element.id}-help`;
  help.hidden = true;
  const toggle = button("?", "help-button");
  toggle.setAttribute("aria-expanded", "false");
  toggle.setAttribute("aria-controls", help.id);
  toggle.addEventListener("click", () => {
    help.hidden = !help.hidden;
    toggle.setAttribute("aria-expanded", String(!help.hidden));
  });
  const head = document.createElement("div");
  head.className = "field-label";
  label.replaceWith(head);
  head.append(label, toggle);
  field.append(help);
  const described = [element.getAttribute("aria-describedby"), help.id].filter(Boolean);
  element.setAttribute("aria-describedby", described.join(" "));
  return {
    label,
    set(schema) {
      const title = (schema.title || name.replaceAll("_", " ")).trim();
      label.textContent = title[0].toUpperCase() + title.slice(1);
      toggle.setAttribute("aria-label", `About ${label.textContent}`);
      help.textContent = schema.description || "";
      toggle.hidden = !schema.description;
      if (toggle.hidden) help.hidden = true;
    },
  };
}

// Number controls -------------------------------------------------------------------------------

// A slider with its value in a number field beside it: either can be used, they agree. The
// slider is the option's control (data-option); the field's text is checked on leaving it
// (the slider clamps it to the range and snaps it to a stop).
export function sliderControl(element, name, { box, fixedStep = false } = {}) {
  const text = labelled(element, name);
  let decimals = decimalsOf(element.step || "1");
  const show = () => {
    box.value = Number(element.value).toFixed(decimals);
  };
  box.setAttribute("aria-labelledby", text.label.id);
  box.inputMode = "decimal";
  element.addEventListener("input", show);
  box.addEventListener("input", () => {
    if (box.value.trim() === "" || !Number.isFinite(Number(box.value))) return;
    element.value = box.value;
    element.dataset.edited = "true";
  });
  box.addEventListener("change", show);
  trackEdits(element);
  let current = {};
  return {
    field: fieldOf(element),
    fits: (schema) => isSlider(schema) && ["number", "integer"].includes(kindOf(schema)),
    configure(schema) {
      current = schema;
      text.set(schema);
      setLimits(element, schema);
      setLimits(box, schema);
      if (!fixedStep) element.step = String(sliderStep(schema));
      box.step = element.step;
      decimals = decimalsOf(element.step);
      if (!edited(element)) {
        element.value = String(isNumber(schema.default) ? schema.default : schema.minimum);
      }
      show();
    },
    // Untouched with no default (none: the engine chooses), it sends nothing.
    value: () => (edited(element) || isNumber(current.default) ? element.value : ""),
  };
}

// A number field with − and + buttons and its range beside it. Integers step by `bump` (or 1),
// other numbers halve and double (weights span orders of magnitude). An empty field is the
// engine's default; − and + then start from the default, or from `start`.
export function stepperControl(element, name, { fillDefault = false, ownSize = false, bump, start } = {}) {
  const text = labelled(element, name);
  const range = document.createElement("small");
  range.className = "range";
  range.id = `${element.id}-range`;
  element.setAttribute(
    "aria-describedby",
    [range.id, element.getAttribute("aria-describedby")].filter(Boolean).join(" "),
  );
  const less = button("−", "step-button");
  const more = button("+", "step-button");
  element.parentElement.classList.add("stepper");
  element.before(less);
  element.after(more, range);
  let current = {};
  const move = (direction) => {
    const integer = current.type === "integer";
    let value = Number(element.value);
    if (element.value.trim() === "" || !Number.isFinite(value)) {
      const fallback = isNumber(current.default) && current.default > 0 ? current.default : start;
      value = isNumber(fallback) ? fallback : (current.minimum ?? 0);
    }
    if (integer) value += direction * (bump ?? 1);
    else if (direction > 0) value = value > 0 ? value * 2 : 1;
    else value /= 2;
    if (isNumber(current.minimum)) value = Math.max(value, current.minimum);
    if (isNumber(current.maximum)) value = Math.min(value, current.maximum);
    return integer ? Math.round(value) : Number(value.toPrecision(6));
  };
  for (const [control, direction] of [[less, -1], [more, 1]]) {
    control.addEventListener("click", () => {
      element.value = String(move(direction));
      element.dispatchEvent(new Event("input", { bubbles: true }));
      element.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }
  trackEdits(element, () => element.value.trim() !== "");
  return {
    field: fieldOf(element),
    fits: (schema) => ["integer", "number"].includes(kindOf(schema)) && !isSlider(schema),
    configure(schema) {
      current = schema;
      text.set(schema);
      setLimits(element, schema);
      element.step = schema.type === "integer" ? "1" : "any";
      element.inputMode = schema.type === "integer" ? "numeric" : "decimal";
      range.textContent = rangeText(schema);
      const own = ownSize && (schema.default === null || schema.default === 0);
      element.placeholder = own ? (schema.ownLabel ?? "photo's size") : defaultPlaceholder(schema);
      if (!edited(element)) {
        const shown = fillDefault && !own && schema.default !== null;
        element.value = shown ? String(schema.default) : "";
      }
      less.setAttribute("aria-label", `Less: ${text.label.textContent}`);
      more.setAttribute("aria-label", `More: ${text.label.textContent}`);
    },
    value: () => element.value.trim(),
  };
}
