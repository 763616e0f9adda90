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

import {
  choiceLabel,
  defaultPlaceholder,
  edited,
  fieldOf,
  isSlider,
  kindOf,
  labelled,
  plainSchema,
  sliderControl,
  stepperControl,
  trackEdits,
} from "./controls.js";

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
