// The Options step, built from the selected engine's options schema (GET /api/engines): every
// property gets a control, with the server's limits, choices and defaults, and no other option
// control is shown. Known options keep their hand-made controls in index.html (the strength and
// colour sliders, the size and iterations fields); any other option gets a generic control
// made here, so an option added to an engine appears on the page without a change to it.
// Every control carries data-option="<name>"; an enum's choices are in data-choices (JSON).
//
// Each option's label is its schema's `title` (a few plain words, declared with the option),
// and its `description` is its help: a "?" button beside the label shows it, and the control
// is described by it for screen readers. A number with both limits gets a slider with its
// value beside it (editable) where its range is small, and a stepper (a number field with −
// and + buttons, its range shown) where it is wide (size, iterations, seed, weights).

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

function kindOf(schema) {
  if (Array.isArray(schema.enum)) return "enum";
  if (["boolean", "integer", "number"].includes(schema.type)) return schema.type;
  return "text";
}

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

// A slider suits a number whose whole range a thumb can cover: a fraction, a small count (at
// most SLIDER_STOPS stops). Sizes, step counts, seeds and weights get a stepper.
const SLIDER_STOPS = 100;

function isSlider(schema) {
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
function trackEdits(element, isSet = () => true) {
  const mark = () => {
    element.dataset.edited = String(isSet());
  };
  element.addEventListener("input", mark);
  element.addEventListener("change", mark);
}

const edited = (element) => element.dataset.edited === "true";

function defaultPlaceholder(schema) {
  return schema.default === null || schema.default === undefined
    ? "optional"
    : `default ${schema.default}`;
}

function fieldOf(element) {
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
function labelled(element, name) {
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
function sliderControl(element, name, { box, fixedStep = false } = {}) {
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
function stepperControl(element, name, { fillDefault = false, ownSize = false, bump, start } = {}) {
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

// Hand-made controls -------------------------------------------------------------------------

function colourControl(element, output, name) {
  const text = labelled(element, name);
  let choices = [];
  const current = () => choices[Number(element.value)];
  const show = () => {
    const label = current() === undefined ? "" : choiceLabel(current());
    output.textContent = label;
    element.setAttribute("aria-valuetext", label);
  };
  element.addEventListener("input", show);
  trackEdits(element);
  return {
    field: fieldOf(element),
    fits: (schema) => kindOf(schema) === "enum",
    configure(schema) {
      text.set(schema);
      const kept = edited(element) ? current() : undefined;
      choices = [...schema.enum];
      element.dataset.choices = JSON.stringify(choices);
      element.min = "0";
      element.max = String(Math.max(choices.length - 1, 0));
      element.step = "1";
      let index = kept === undefined ? -1 : choices.indexOf(kept);
      if (index < 0) index = Math.max(choices.indexOf(schema.default), 0);
      element.value = String(index);
      show();
    },
    value: () => current(),
  };
}

// Generic controls: any other option ---------------------------------------------------------

function newField(name, make) {
  const id = `option-${name}`;
  const field = document.createElement("div");
  field.className = "field";
  const label = document.createElement("label");
  label.htmlFor = id;
  const body = document.createElement("div");
  body.className = "field-control";
  const element = make();
  element.id = id;
  element.name = name;
  element.dataset.option = name;
  body.append(element);
  field.append(label, body);
  return { field, element, body };
}

function genericNumber(name, schema) {
  const input = (type) => () => Object.assign(document.createElement("input"), { type });
  if (isSlider(schema)) {
    const { field, element, body } = newField(name, input("range"));
    const box = input("number")();
    box.className = "value";
    box.id = `option-${name}-value`;
    body.append(box);
    const control = sliderControl(element, name, { box });
    control.configure(schema);
    return control;
  }
  const { element } = newField(name, input("number"));
  const control = stepperControl(element, name);
  control.configure(schema);
  return control;
}

function genericControl(name, schema) {
  const kind = kindOf(schema);
  if (kind === "integer" || kind === "number") return genericNumber(name, schema);
  const { field, element } = newField(name, () => {
    if (kind === "enum") return document.createElement("select");
    const input = document.createElement("input");
    input.type = kind === "boolean" ? "checkbox" : "text";
    return input;
  });
  const text = labelled(element, name);
  let current = schema;
  trackEdits(element, () => element.type === "checkbox" || element.value.trim() !== "");

  const configure = (updated) => {
    current = updated;
    text.set(updated);
    if (kind === "enum") {
      const kept = edited(element) ? element.value : null;
      const choices = [...updated.enum];
      element.dataset.choices = JSON.stringify(choices);
      const options = choices.map((choice) => new Option(choiceLabel(choice), String(choice)));
      const hasDefault = choices.some((choice) => choice === updated.default);
      if (!hasDefault) options.unshift(new Option("default", ""));
      element.replaceChildren(...options);
      const wanted = [kept, hasDefault ? String(updated.default) : ""];
      element.value = wanted.find((v) => v !== null && choices.map(String).includes(v)) ?? "";
    } else if (kind === "boolean") {
      if (!edited(element)) element.checked = updated.default === true;
    } else {
      element.placeholder = defaultPlaceholder(updated);
    }
  };
  configure(schema);
  return {
    field,
    fits: (s) => kindOf(s) === kind,
    configure,
    value() {
      if (kind === "boolean") {
        // Sent only when it differs from the default: empty means "the engine's default".
        return element.checked === (current.default === true) ? null : String(element.checked);
      }
      return element.value.trim();
    },
  };
}

// The Options step -----------------------------------------------------------------------------

export class OptionControls {
  // handmade: {name: control} for index.html's controls; container: where generic ones go.
  constructor(handmade, container) {
    this.handmade = new Map(Object.entries(handmade));
    this.generic = new Map();
    this.container = container;
    this.shown = new Map(); // name → control, for the selected engine
  }

  static fromPage($) {
    return new OptionControls(
      {
        strength: sliderControl($("strength"), "strength", {
          box: $("strength-value"),
          fixedStep: true, // 0.05: twenty stops, as the keyboard moves
        }),
        preserve_color: colourControl($("colour"), $("colour-out"), "preserve_color"),
        size: stepperControl($("size"), "size", {
          fillDefault: true,
          ownSize: true,
          bump: 64,
          start: 512,
        }),
        iterations: stepperControl($("iterations"), "iterations", { bump: 50 }),
      },
      $("more-options"),
    );
  }

  // Shows the controls of `engine` (an item of /api/engines; none: no option controls). With
  // `video`, the engine's video options too (`video_options`: generic controls), and the size
  // within the server's `max_video_size`.
  show(engine, { video = false } = {}) {
    const properties = { ...(engine?.options?.properties ?? {}) };
    if (video) Object.assign(properties, engine?.video_options?.properties ?? {});
    const videoSize = video ? engine?.limits?.max_video_size : undefined;
    this.shown = new Map();
    for (const [name, raw] of Object.entries(properties)) {
      const schema = plainSchema(raw);
      if (name === "size" && typeof videoSize === "number") {
        schema.maximum = Math.min(schema.maximum ?? videoSize, videoSize);
        schema.ownLabel = "clip's size"; // its most is in the range beside
      }
      let control = this.handmade.get(name);
      if (!control || !control.fits(schema)) {
        control = this.generic.get(name);
        if (control && !control.fits(schema)) {
          control.field.remove();
          control = null;
        }
        if (!control) {
          control = genericControl(name, schema);
          this.container.append(control.field);
          this.generic.set(name, control);
        } else {
          control.configure(schema);
        }
      } else {
        control.configure(schema);
      }
      this.shown.set(name, control);
    }
    const shown = new Set(this.shown.values());
    for (const control of [...this.handmade.values(), ...this.generic.values()]) {
      control.field.hidden = !shown.has(control);
    }
  }

  // The selected engine's options that have a value: {name: text}, as the form sends them.
  values() {
    const values = {};
    for (const [name, control] of this.shown) {
      const value = control.value();
      if (value !== null && value !== undefined && value !== "") values[name] = String(value);
    }
    return values;
  }
}
