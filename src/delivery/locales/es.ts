// Spanish built-in messages (see ./de.ts for how a locale is added).
import type { LocaleStrings } from "../locale-strings.ts";

export const es: LocaleStrings = {
  email: {
    verify_email: {
      subject: "Confirma tu dirección de correo para {product}",
      paragraphs: [
        "Te damos la bienvenida a {product}. Para terminar de crear tu cuenta, confirma tu dirección de correo abriendo este enlace:",
        "{link}",
        "Este enlace caduca en {expiresIn}.",
        "Si no has creado una cuenta, puedes ignorar este correo.",
      ],
      required: ["link"],
    },
    phone_existing: {
      subject: "Alguien intentó añadir tu número de teléfono a otra cuenta de {product}",
      paragraphs: [
        "Alguien con sesión iniciada en {product} intentó añadir a su cuenta un número de teléfono que pertenece a la tuya. No se añadió: el número sigue siendo tuyo.",
        "Si fuiste tú, con otra cuenta, inicia sesión con esta.",
        "Si no fuiste tú, puedes ignorar este correo: tu cuenta no ha cambiado.",
      ],
      required: [],
    },
    signup_existing: {
      subject: "Alguien intentó crear una cuenta de {product} con tu dirección",
      paragraphs: [
        "Alguien intentó crear una cuenta de {product} con esta dirección de correo, pero ya tienes una cuenta.",
        "Si fuiste tú, inicia sesión o restablece tu contraseña.",
        "Si no fuiste tú, puedes ignorar este correo: tu cuenta no ha cambiado.",
      ],
      required: [],
    },
    password_reset: {
      subject: "Restablece tu contraseña de {product}",
      paragraphs: [
        "Hemos recibido una solicitud para restablecer la contraseña de tu cuenta de {product}.",
        "Para elegir una contraseña nueva, abre este enlace: {link}",
        "Código de restablecimiento: {code}",
        "Esta solicitud caduca en {expiresIn}.",
        "Si no pediste restablecer tu contraseña, ignora este correo: tu contraseña sigue siendo la misma.",
      ],
      required: ["link|code"],
    },
    email_change_code: {
      subject: "Confirma tu nueva dirección de correo para {product}",
      paragraphs: [
        "Introduce este código para confirmar tu nueva dirección de correo en {product}:",
        "{code}",
        "El código caduca en {expiresIn}.",
        "Si no pediste cambiar tu dirección de correo, ignora este correo: tu cuenta sigue igual.",
      ],
      required: ["code"],
    },
    email_change_requested: {
      subject: "Se ha solicitado cambiar la dirección de correo de tu cuenta de {product}",
      paragraphs: [
        "Desde una sesión iniciada en tu cuenta de {product}, alguien pidió cambiar su dirección de correo.",
        "La nueva dirección solicitada es {email}.",
        "Nada cambia hasta que la nueva dirección se confirme con el código que se le envió: hasta entonces, sigues iniciando sesión con esta dirección.",
        "Si no fuiste tú, cambia tu contraseña de inmediato y cierra tus otras sesiones.",
      ],
      required: [],
    },
    email_changed_notice: {
      subject: "Se ha cambiado la dirección de correo de tu cuenta de {product}",
      paragraphs: [
        "La dirección de correo de tu cuenta de {product} se acaba de cambiar.",
        "La nueva dirección es {email}.",
        "Si no hiciste este cambio, restablece tu contraseña de inmediato y contacta con soporte.",
      ],
      required: [],
    },
    password_changed_notice: {
      subject: "Se ha cambiado la contraseña de tu cuenta de {product}",
      paragraphs: [
        "La contraseña de tu cuenta de {product} se acaba de cambiar.",
        "Si fuiste tú, no tienes que hacer nada más.",
        "Si no, restablece tu contraseña de inmediato y contacta con soporte.",
      ],
      required: [],
    },
    invitation: {
      subject: "Te han invitado a {product}",
      paragraphs: [
        "Te han invitado a crear una cuenta en {product}. Abre este enlace para aceptar la invitación:",
        "{link}",
        "La invitación caduca en {expiresIn}.",
        "Si no esperabas esta invitación, puedes ignorar este correo.",
      ],
      required: ["link"],
    },
    trial_ended: {
      subject: "Tu prueba de {product} ha terminado",
      paragraphs: [
        "Tu prueba del plan {plan} en {product} ha terminado.",
        "Tu cuenta está ahora en el plan {freePlan}; todo lo que creaste se conserva.",
        "Para mantener las funciones de {plan}, elige una suscripción en tu cuenta.",
      ],
      required: ["plan"],
    },
    subscription_expired: {
      subject: "Tu suscripción a {product} ha terminado",
      paragraphs: [
        "Tu suscripción {plan} en {product} ha terminado y no se ha renovado.",
        "Tu cuenta está ahora en el plan {freePlan}; todo lo que creaste se conserva.",
        "Para recuperar {plan}, vuelve a suscribirte en tu cuenta.",
      ],
      required: ["plan"],
    },
    renewal_reminder: {
      subject: "Tu suscripción a {product} se renueva el {date}",
      paragraphs: [
        "Tu suscripción {plan} en {product} se renueva el {date}.",
        "No tienes que hacer nada para mantenerla. Para cambiarla o cancelarla, ve a tu cuenta antes de esa fecha.",
      ],
      required: ["plan", "date"],
    },
    second_factor_added: {
      subject: "Se ha añadido un segundo factor a tu cuenta de {product}",
      paragraphs: [
        "Se acaba de añadir un segundo factor (una aplicación de autenticación o una llave de acceso) a tu cuenta de {product}. Se te pedirá al iniciar sesión.",
        "Si has sido tú, no tienes que hacer nada más.",
        "Si no, restablece tu contraseña de inmediato y contacta con el soporte.",
      ],
      required: [],
    },
    second_factor_removed: {
      subject: "Se ha quitado un segundo factor de tu cuenta de {product}",
      paragraphs: [
        "Se acaba de quitar un segundo factor (una aplicación de autenticación o una llave de acceso) de tu cuenta de {product}.",
        "Si has sido tú, o se lo pediste al soporte, no tienes que hacer nada más.",
        "Si no, restablece tu contraseña de inmediato y contacta con el soporte.",
      ],
      required: [],
    },
    recovery_code_used: {
      subject: "Se ha usado un código de recuperación para entrar en {product}",
      paragraphs: [
        "Se acaba de usar uno de tus códigos de recuperación para iniciar sesión en tu cuenta de {product}. Cada código funciona una sola vez.",
        "Si has sido tú, conviene generar nuevos códigos de recuperación en los ajustes de tu cuenta.",
        "Si no, restablece tu contraseña de inmediato y contacta con el soporte.",
      ],
      required: [],
    },
  },
  sms: {
    phone_code: { text: "{code} es tu codigo de {product}. Caduca en {expiresIn}. No lo compartas con nadie.", required: ["code", "minutes"] },
  },
  units: [
    [1440, "día", "días"],
    [60, "hora", "horas"],
    [1, "minuto", "minutos"],
  ],
};
