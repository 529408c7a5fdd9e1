// German built-in messages. A locale is data: one file like this one (every
// email and SMS kind, the duration units) registered in ../templates.ts, and
// its code in SUPPORTED_LOCALES (src/domain/types.ts).
import type { LocaleStrings } from "../locale-strings.ts";

export const de: LocaleStrings = {
  email: {
    verify_email: {
      subject: "Bestätigen Sie Ihre E-Mail-Adresse für {product}",
      paragraphs: [
        "Willkommen bei {product}. Um Ihr Konto fertig anzulegen, bestätigen Sie Ihre E-Mail-Adresse über diesen Link:",
        "{link}",
        "Dieser Link läuft in {expiresIn} ab.",
        "Wenn Sie kein Konto angelegt haben, können Sie diese E-Mail ignorieren.",
      ],
      required: ["link"],
    },
    phone_existing: {
      subject: "Jemand wollte Ihre Telefonnummer zu einem anderen {product}-Konto hinzufügen",
      paragraphs: [
        "Jemand, der bei {product} angemeldet ist, wollte seinem Konto eine Telefonnummer hinzufügen, die zu Ihrem Konto gehört. Sie wurde nicht hinzugefügt: Die Nummer bleibt Ihre.",
        "Wenn Sie das mit einem anderen Konto waren, melden Sie sich stattdessen mit diesem an.",
        "Wenn nicht, können Sie diese E-Mail ignorieren: Ihr Konto ist unverändert.",
      ],
      required: [],
    },
    signup_existing: {
      subject: "Jemand wollte mit Ihrer Adresse ein {product}-Konto anlegen",
      paragraphs: [
        "Jemand wollte mit dieser E-Mail-Adresse ein {product}-Konto anlegen, aber Sie haben bereits ein Konto.",
        "Wenn Sie das waren, melden Sie sich an oder setzen Sie Ihr Passwort zurück.",
        "Wenn nicht, können Sie diese E-Mail ignorieren: Ihr Konto ist unverändert.",
      ],
      required: [],
    },
    password_reset: {
      subject: "Setzen Sie Ihr {product}-Passwort zurück",
      paragraphs: [
        "Wir haben eine Anfrage erhalten, das Passwort Ihres {product}-Kontos zurückzusetzen.",
        "Um ein neues Passwort zu wählen, öffnen Sie diesen Link: {link}",
        "Code zum Zurücksetzen: {code}",
        "Diese Anfrage läuft in {expiresIn} ab.",
        "Wenn Sie das nicht angefordert haben, ignorieren Sie diese E-Mail: Ihr Passwort bleibt unverändert.",
      ],
      required: ["link|code"],
    },
    email_change_code: {
      subject: "Bestätigen Sie Ihre neue E-Mail-Adresse für {product}",
      paragraphs: [
        "Geben Sie diesen Code ein, um Ihre neue E-Mail-Adresse für {product} zu bestätigen:",
        "{code}",
        "Der Code läuft in {expiresIn} ab.",
        "Wenn Sie Ihre E-Mail-Adresse nicht ändern wollten, ignorieren Sie diese E-Mail: Ihr Konto bleibt unverändert.",
      ],
      required: ["code"],
    },
    email_change_requested: {
      subject: "Änderung der E-Mail-Adresse Ihres {product}-Kontos angefordert",
      paragraphs: [
        "Aus einer angemeldeten Sitzung Ihres {product}-Kontos wurde eine Änderung der E-Mail-Adresse angefordert.",
        "Die gewünschte neue Adresse ist {email}.",
        "Nichts ändert sich, bis die neue Adresse mit dem an sie gesendeten Code bestätigt ist: bis dahin melden Sie sich weiter mit dieser Adresse an.",
        "Wenn Sie das nicht waren, ändern Sie sofort Ihr Passwort und melden Sie Ihre anderen Sitzungen ab.",
      ],
      required: [],
    },
    email_changed_notice: {
      subject: "Die E-Mail-Adresse Ihres {product}-Kontos wurde geändert",
      paragraphs: [
        "Die E-Mail-Adresse Ihres {product}-Kontos wurde soeben geändert.",
        "Die neue Adresse ist {email}.",
        "Wenn Sie das nicht waren, setzen Sie sofort Ihr Passwort zurück und wenden Sie sich an den Support.",
      ],
      required: [],
    },
    password_changed_notice: {
      subject: "Das Passwort Ihres {product}-Kontos wurde geändert",
      paragraphs: [
        "Das Passwort Ihres {product}-Kontos wurde soeben geändert.",
        "Wenn Sie das waren, ist nichts weiter zu tun.",
        "Wenn nicht, setzen Sie sofort Ihr Passwort zurück und wenden Sie sich an den Support.",
      ],
      required: [],
    },
    invitation: {
      subject: "Sie sind zu {product} eingeladen",
      paragraphs: [
        "Sie wurden eingeladen, ein Konto bei {product} anzulegen. Öffnen Sie diesen Link, um die Einladung anzunehmen:",
        "{link}",
        "Die Einladung läuft in {expiresIn} ab.",
        "Wenn Sie diese Einladung nicht erwartet haben, können Sie diese E-Mail ignorieren.",
      ],
      required: ["link"],
    },
    trial_ended: {
      subject: "Ihre {product}-Testphase ist beendet",
      paragraphs: [
        "Ihre Testphase des Tarifs {plan} bei {product} ist beendet.",
        "Ihr Konto nutzt jetzt den Tarif {freePlan}; alles, was Sie angelegt haben, bleibt erhalten.",
        "Um die Funktionen von {plan} zu behalten, wählen Sie in Ihrem Konto ein Abonnement.",
      ],
      required: ["plan"],
    },
    subscription_expired: {
      subject: "Ihr {product}-Abonnement ist beendet",
      paragraphs: [
        "Ihr Abonnement {plan} bei {product} ist abgelaufen und wurde nicht verlängert.",
        "Ihr Konto nutzt jetzt den Tarif {freePlan}; alles, was Sie angelegt haben, bleibt erhalten.",
        "Um {plan} zurückzubekommen, schließen Sie in Ihrem Konto erneut ein Abonnement ab.",
      ],
      required: ["plan"],
    },
    renewal_reminder: {
      subject: "Ihr {product}-Abonnement verlängert sich am {date}",
      paragraphs: [
        "Ihr Abonnement {plan} bei {product} verlängert sich am {date}.",
        "Sie müssen nichts tun, um es zu behalten. Um es zu ändern oder zu kündigen, gehen Sie vor diesem Datum in Ihr Konto.",
      ],
      required: ["plan", "date"],
    },
    second_factor_added: {
      subject: "Ihrem {product}-Konto wurde ein zweiter Faktor hinzugefügt",
      paragraphs: [
        "Ihrem {product}-Konto wurde soeben ein zweiter Faktor (eine Authenticator-App oder ein Passkey) hinzugefügt. Bei der Anmeldung wird er nun abgefragt.",
        "Wenn Sie das waren, ist nichts weiter zu tun.",
        "Wenn nicht, setzen Sie sofort Ihr Passwort zurück und wenden Sie sich an den Support.",
      ],
      required: [],
    },
    second_factor_removed: {
      subject: "Ein zweiter Faktor wurde von Ihrem {product}-Konto entfernt",
      paragraphs: [
        "Von Ihrem {product}-Konto wurde soeben ein zweiter Faktor (eine Authenticator-App oder ein Passkey) entfernt.",
        "Wenn Sie das waren oder den Support darum gebeten haben, ist nichts weiter zu tun.",
        "Wenn nicht, setzen Sie sofort Ihr Passwort zurück und wenden Sie sich an den Support.",
      ],
      required: [],
    },
    recovery_code_used: {
      subject: "Ein Wiederherstellungscode wurde für die Anmeldung bei {product} verwendet",
      paragraphs: [
        "Einer Ihrer Wiederherstellungscodes wurde soeben für die Anmeldung bei Ihrem {product}-Konto verwendet. Jeder Code funktioniert nur einmal.",
        "Wenn Sie das waren, erstellen Sie am besten neue Wiederherstellungscodes in Ihren Kontoeinstellungen.",
        "Wenn nicht, setzen Sie sofort Ihr Passwort zurück und wenden Sie sich an den Support.",
      ],
      required: [],
    },
  },
  sms: {
    phone_code: { text: "{code} ist Ihr {product}-Code. Er läuft in {expiresIn} ab. Geben Sie ihn nicht weiter.", required: ["code", "minutes"] },
  },
  units: [
    [1440, "Tag", "Tagen"],
    [60, "Stunde", "Stunden"],
    [1, "Minute", "Minuten"],
  ],
};
