// The Options step, built from the selected engine's options schema (GET /api/engines): every
// property gets a control, with the server's limits, choices and defaults, and no other option
// control is shown. Known options keep their hand-made controls in index.html (the strength and
// colour sliders, the size and iterations fields); any other option gets a generic control
// made here, so an option added to an engine appears on the page without a change to it.
// Every control carries data-option="<name>"; an enum's choices are in data-choices (JSON).

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

// A property's schema without its "or null" branch, with the description and default that sit
// beside the anyOf: {type, minimum, maximum, enum, description, default, nullable}.
export function plainSchema(schema) {
  const branch = schema.anyOf?.find((s) => s.type !== "null") ?? schema;
  return {
    ...branch,
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

function setLimits(element, schema) {
  for (const [attribute, key] of [["min", "minimum"], ["max", "maximum"]]) {
    if (typeof schema[key] === "number") element.setAttribute(attribute, String(schema[key]));
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

// Hand-made controls -------------------------------------------------------------------------

function strengthControl(element, output) {
  const show = () => {
    output.textContent = Number(element.value).toFixed(2);
  };
  element.addEventListener("input", show);
  trackEdits(element);
  return {
    field: fieldOf(element),
    fits: (schema) => ["number", "integer"].includes(kindOf(schema)),
    configure(schema) {
      setLimits(element, schema);
      if (!edited(element) && typeof schema.default === "number") {
        element.value = String(schema.default);
      }
      show();
    },
    value: () => element.value,
  };
}

function colourControl(element, output) {
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

// A number field for an integer option. With `fillDefault`, an untouched field shows the
// engine's default; a default of 0 or none means "the photo's own size" (the field stays empty).
function integerControl(element, { fillDefault = false, ownSize = false } = {}) {
  trackEdits(element, () => element.value.trim() !== "");
  return {
    field: fieldOf(element),
    fits: (schema) => kindOf(schema) === "integer",
    configure(schema) {
      setLimits(element, schema);
      const own = ownSize && (schema.default === null || schema.default === 0);
      element.placeholder = own ? (schema.ownLabel ?? "photo's size") : defaultPlaceholder(schema);
      if (!edited(element)) {
        const shown = fillDefault && !own && schema.default !== null;
        element.value = shown ? String(schema.default) : "";
      }
    },
    value: () => element.value.trim(),
  };
}

// Generic controls: any other option ---------------------------------------------------------

function labelText(name, schema) {
  const text = (schema.description || name.replaceAll("_", " ")).trim();
  return text[0].toUpperCase() + text.slice(1);
}

function genericControl(name, schema) {
  const kind = kindOf(schema);
  const id = `option-${name}`;
  const field = document.createElement("div");
  field.className = "field";
  const label = document.createElement("label");
  label.htmlFor = id;
  let element;
  if (kind === "enum") {
    element = document.createElement("select");
  } else {
    element = document.createElement("input");
    element.type = { boolean: "checkbox", integer: "number", number: "number" }[kind] || "text";
  }
  element.id = id;
  element.name = name;
  element.dataset.option = name;
  field.append(label, element);
  let current = schema;
  trackEdits(element, () => element.type === "checkbox" || element.value.trim() !== "");

  const configure = (updated) => {
    current = updated;
    label.textContent = labelText(name, updated);
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
      if (kind !== "text") {
        setLimits(element, updated);
        element.step = kind === "integer" ? "1" : "any";
        element.inputMode = kind === "integer" ? "numeric" : "decimal";
      }
      element.placeholder = defaultPlaceholder(updated);
    }
  };
  configure(schema);
  return {
    kind,
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
        strength: strengthControl($("strength"), $("strength-out")),
        preserve_color: colourControl($("colour"), $("colour-out")),
        size: integerControl($("size"), { fillDefault: true, ownSize: true }),
        iterations: integerControl($("iterations")),
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
        schema.ownLabel = `clip's size, at most ${videoSize}`;
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
